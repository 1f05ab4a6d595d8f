// Fuzz target: the counter file parser, through CounterStore's public API only (the file format
// may change): the fuzz bytes become a key's file, and read() returns a value or throws
// std::runtime_error, never crashes. A value it returns must survive write() and read() again.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "app/counter_store.h"
#include "harness/temp_dir.h"

namespace {

const forklock::harness::TempDir& directory()
{
    static const forklock::harness::TempDir dir("forklock-fuzz-counter");
    return dir;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static const forklock::CounterStore store(directory().path());
    {
        std::ofstream file(directory().path() / "k", std::ios::binary | std::ios::trunc);
        file.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    std::uint64_t value = 0;
    try {
        value = store.read("k");
    } catch (const std::runtime_error&) {
        return 0; // corrupt: refused, as the contract says
    }
    store.write("k", value);
    if (store.read("k") != value) {
        std::fprintf(stderr, "read %llu back as %llu\n", static_cast<unsigned long long>(value),
                     static_cast<unsigned long long>(store.read("k")));
        std::abort();
    }
    return 0;
}
