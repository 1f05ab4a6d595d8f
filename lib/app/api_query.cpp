// The query string of an API request: one parameter's raw text, or an integer in a range.

#include <charconv>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "app/api.h"

namespace forklock {

std::optional<std::string> query_string(const std::string& query, std::string_view name)
{
    std::optional<std::string> found;
    std::string_view rest(query);
    while (!rest.empty()) {
        auto amp = rest.find('&');
        auto pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        auto eq = pair.find('=');
        if (pair.substr(0, eq) == name)
            found = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    }
    return found;
}

std::optional<int> query_int(const std::string& query, std::string_view name, int low, int high)
{
    const auto found = query_string(query, name);
    if (!found) return std::nullopt;
    int value = 0;
    auto [end, ec] = std::from_chars(found->data(), found->data() + found->size(), value);
    if (found->empty() || ec != std::errc() || end != found->data() + found->size() ||
        value < low || value > high)
        throw BadRequest(fmt::format("{} must be an integer in {}..{}", name, low, high));
    return value;
}

} // namespace forklock
