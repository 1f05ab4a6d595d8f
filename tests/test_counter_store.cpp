#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "app/counter_store.h"
#include "harness/child.h"
#include "harness/temp_dir.h"
#include "os/memory_region.h"

using namespace forklock;

namespace {

std::string slurp(const std::filesystem::path& p)
{
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

ino_t inode_of(const std::filesystem::path& p)
{
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_ino;
}

// A word both sides of a fork() see: the writer's last acknowledged value.
struct SharedWord {
    MemoryRegion region{sizeof(std::atomic<std::uint64_t>), MemoryRegion::Sharing::shared};
    std::atomic<std::uint64_t>& operator*() const
    {
        return *static_cast<std::atomic<std::uint64_t>*>(region.data());
    }
};

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
    auto text = slurp(dir / "k");
    CHECK(text.size() == counter_file::kFileSize);
    CHECK(counter_file::decode_file(text)->value == 43);
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
    CHECK_THROWS_AS(store.read("link"), StoreError);
}

TEST_CASE("CounterStore: a key whose name is taken by a directory or a FIFO is an error",
          "[counter_store]")
{
    const harness::TempDir temp("store-odd");
    const auto& dir = temp.path();
    std::filesystem::create_directory(dir / "sub");
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    CounterStore store(dir);
    CHECK_THROWS(store.read("sub"));
    CHECK_THROWS_WITH(store.read("fifo"), Catch::Contains("not a regular file"));
    CHECK_THROWS_WITH(store.write("fifo", 1), Catch::Contains("not a regular file"));
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

TEST_CASE("CounterStore: a format-1 file is read as it is and migrated in place by its first write",
          "[counter_store]")
{
    const harness::TempDir temp("store-v1");
    const auto& dir = temp.path();
    std::ofstream(dir / "k") << "41\n";
    std::ofstream(dir / "max") << "18446744073709551615\n";
    auto inode = inode_of(dir / "k");
    CounterStore store(dir);
    CHECK(store.read("k") == 41);
    CHECK(store.read("max") == UINT64_MAX);
    store.write("k", 42);
    CHECK(slurp(dir / "k").starts_with(std::string("41\n") + '\0'));
    CHECK(CounterStore(dir).read("k") == 42);
    store.write("k", 43);
    CHECK(CounterStore(dir).read("k") == 43);
    CHECK(inode_of(dir / "k") == inode);
    CHECK(std::filesystem::file_size(dir / "k") == counter_file::kFileSize);
}

TEST_CASE("CounterStore: a store sees the writes another process makes to a file it keeps open",
          "[counter_store]")
{
    const harness::TempDir temp("store-share");
    const auto& dir = temp.path();
    CounterStore store(dir);
    store.write("k", 1);
    CHECK(store.read("k") == 1);
    harness::Child other([&] {
        CounterStore(dir).write("k", 7);
        return 0;
    });
    REQUIRE(other.wait() == 0);
    CHECK(store.read("k") == 7);
    store.write("k", 8);
    CHECK(CounterStore(dir).read("k") == 8);
}

TEST_CASE("CounterStore: a writer SIGKILLed at random instants loses no acknowledged write",
          "[counter_store]")
{
    const harness::TempDir temp("store-kill");
    const auto& dir = temp.path();
    SharedWord acked;
    std::mt19937 rng(std::random_device{}());
    for (int round = 0; round < 40; ++round) {
        if (round % 2 ==
            0) { // half the rounds start from a format-1 file, to kill the migration too
            std::filesystem::remove(dir / "k");
            std::ofstream(dir / "k") << (*acked).load() << "\n";
        }
        std::atomic<std::uint64_t>& last = *acked;
        harness::Child writer([&] {
            CounterStore store(dir);
            for (std::uint64_t v = last.load() + 1;; ++v) {
                store.write("k", v);
                last.store(v);
            }
            return 0;
        });
        // A random pause on purpose: it picks the instant of the kill, it waits for nothing.
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
        writer.kill();
        std::uint64_t value = 0;
        REQUIRE_NOTHROW(value = CounterStore(dir).read("k"));
        // The write in flight when the kill came may or may not have landed; every earlier one has.
        CHECK((value == last.load() || value == last.load() + 1));
        last.store(value);
    }
}

TEST_CASE("CounterStore: a reader racing a writer sees only values that were written",
          "[counter_store]")
{
    const harness::TempDir temp("store-race");
    const auto& dir = temp.path();
    // Every digit differs between the two values, so a copy mixing them can't pass for either.
    constexpr std::uint64_t kOnes = 11111111111111111111ULL;
    constexpr std::uint64_t kTwos = 2222222222222222222ULL;
    CounterStore(dir).write("k", kOnes);
    SharedWord writes;
    harness::Child writer([&] {
        CounterStore store(dir);
        for (std::uint64_t i = 0;; ++i) {
            store.write("k", i % 2 ? kOnes : kTwos);
            (*writes).store(i + 1);
        }
        return 0;
    });
    CounterStore store(dir);
    std::size_t bad = 0, reads = 0, corrupt = 0;
    // The deadline is a safety net: a sanitizer build on a busy machine needs far more than the
    // two seconds an optimised one takes.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while ((*writes).load() < 200000 && std::chrono::steady_clock::now() < deadline) {
        try {
            auto v = store.read("k");
            bad += v != kOnes && v != kTwos;
        } catch (const std::runtime_error&) {
            ++corrupt;
        }
        ++reads;
    }
    writer.kill();
    INFO(reads << " reads during " << (*writes).load() << " writes");
    CHECK((*writes).load() >= 200000);
    CHECK(corrupt == 0);
    CHECK(bad == 0);
}

TEST_CASE("CounterStore: update writes next(value), and nothing when next throws",
          "[counter_store]")
{
    const harness::TempDir temp("store-update");
    const auto& dir = temp.path();
    CounterStore store(dir);
    CHECK(store.update("k", [](std::uint64_t v) { return v + 5; }) == 5);
    CHECK(store.update("k", [](std::uint64_t v) { return v * 3; }) == 15);
    CHECK_THROWS_AS(
        store.update("k", [](std::uint64_t) -> std::uint64_t { throw std::runtime_error("no"); }),
        std::runtime_error);
    CHECK(CounterStore(dir).read("k") == 15);
}
