// Fuzz target: counter key validation. key_error() must agree with a reference written here from
// the rule in counter_store.h (1..128 bytes of A-Za-z0-9._-, not starting with '.'), and
// valid_key() with key_error().

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "app/counter_store.h"

namespace {

bool reference_valid(std::string_view key)
{
    constexpr std::string_view kAllowed =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    if (key.empty() || key.size() > 128 || key[0] == '.') return false;
    return key.find_first_not_of(kAllowed) == std::string_view::npos;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view key(reinterpret_cast<const char*>(data), size);
    auto problem = forklock::key_error(key);
    if (problem.has_value() == reference_valid(key)) std::abort();
    if (problem && problem->empty()) std::abort(); // a refusal must say why
    if (forklock::valid_key(key) != !problem) std::abort();
    return 0;
}
