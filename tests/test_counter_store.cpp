#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "app/counter_store.h"
#include "harness/child.h"
#include "harness/temp_dir.h"

using namespace forklock;

namespace {

std::string slurp(const std::filesystem::path& p)
{
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

TEST_CASE("key_error: accepts 1..128 characters of A-Za-z0-9._- not starting with a dot",
          "[counter_store]")
{
    CHECK(valid_key("k"));
    CHECK(valid_key("Counter_1.2-x"));
    CHECK(valid_key(std::string(128, 'a')));
    CHECK_FALSE(valid_key(""));
    CHECK_FALSE(valid_key(std::string(129, 'a')));
    CHECK_FALSE(valid_key(".hidden"));
    CHECK_FALSE(valid_key(".."));
    CHECK_FALSE(valid_key("a/b"));
    CHECK_FALSE(valid_key("a%2fb"));
    CHECK_FALSE(valid_key("a b"));
    CHECK_FALSE(valid_key(std::string("a\0b", 3)));
    CHECK_FALSE(valid_key("caf\xc3\xa9"));
    CHECK(key_error(".x").value() == "the key must not start with '.'");
}

TEST_CASE("CounterStore: a key never written reads 0, a written one reads back", "[counter_store]")
{
    const harness::TempDir temp("store");
    const auto& dir = temp.path();
    CounterStore store(dir);
    CHECK(store.read("fresh") == 0);
    store.write("k", 42);
    CHECK(store.read("k") == 42);
    store.write("k", 43);
    CHECK(store.read("k") == 43);
    CHECK(slurp(dir / "k") == "43\n");
    store.write("big", UINT64_MAX);
    CHECK(store.read("big") == UINT64_MAX);
}

TEST_CASE("CounterStore: writes leave no temporary file behind", "[counter_store]")
{
    const harness::TempDir temp("store-tmp");
    const auto& dir = temp.path();
    CounterStore store(dir);
    for (int i = 0; i < 10; ++i) store.write("k", static_cast<std::uint64_t>(i));
    std::size_t files = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir)) ++files;
    CHECK(files == 1);
}

TEST_CASE("CounterStore: a corrupt counter file is an error, not a silent 0", "[counter_store]")
{
    const harness::TempDir temp("store-corrupt");
    const auto& dir = temp.path();
    std::ofstream(dir / "bad") << "12x\n";
    std::ofstream(dir / "empty");
    CounterStore store(dir);
    CHECK_THROWS_AS(store.read("bad"), std::runtime_error);
    CHECK_THROWS_AS(store.read("empty"), std::runtime_error);
}

TEST_CASE("CounterStore: a symlink planted in the data directory is not followed",
          "[counter_store]")
{
    const harness::TempDir temp("store-link");
    const auto& dir = temp.path();
    std::filesystem::create_symlink("/etc/hostname", dir / "link");
    CounterStore store(dir);
    CHECK_THROWS_AS(store.read("link"), std::system_error);
}

TEST_CASE("temp_file_owner: parses the pid out of .KEY.PID.TID.tmp names only", "[counter_store]")
{
    CHECK(temp_file_owner(".k.123.456.tmp") == 123);
    CHECK(temp_file_owner(".a.b.c.77.78.tmp") == 77);
    CHECK_FALSE(temp_file_owner("k.123.456.tmp"));
    CHECK_FALSE(temp_file_owner(".k.x.456.tmp"));
    CHECK_FALSE(temp_file_owner(".k.123.456.tmpx"));
    CHECK_FALSE(temp_file_owner(".locks"));
    CHECK_FALSE(temp_file_owner("k"));
}

TEST_CASE("CounterStore: remove_temp_files removes stale temporaries, all or one pid's",
          "[counter_store]")
{
    const harness::TempDir temp("store-stale");
    const auto& dir = temp.path();
    for (const char* name : {".k.100.100.tmp", ".k.200.201.tmp", ".j.100.101.tmp"})
        std::ofstream(dir / name) << "1";
    std::ofstream(dir / "k") << "5\n";
    CounterStore store(dir);
    CHECK(store.remove_temp_files(100) == 2);
    CHECK(std::filesystem::exists(dir / ".k.200.201.tmp"));
    CHECK(store.remove_temp_files() == 1);
    CHECK(store.read("k") == 5);
}

TEST_CASE("CounterStore: a writer SIGKILLed at random instants never leaves a torn or empty file",
          "[counter_store]")
{
    const harness::TempDir temp("store-kill");
    const auto& dir = temp.path();
    CounterStore(dir).write("k", 1);
    for (int round = 0; round < 30; ++round) {
        harness::Child writer([&] {
            CounterStore store(dir);
            for (std::uint64_t v = 2;; ++v) store.write("k", v);
            return 0;
        });
        // A fixed pause on purpose: it picks the instant of the kill, it waits for nothing.
        std::this_thread::sleep_for(std::chrono::microseconds(200 + 97 * round));
        writer.kill();
        CounterStore store(dir);
        REQUIRE_NOTHROW(store.read("k"));
        CHECK(store.read("k") >= 1);
    }
}
