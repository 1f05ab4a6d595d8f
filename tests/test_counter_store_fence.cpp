// CounterStore::update_fenced (the server's --fencing): the fencing check and the write are one
// step inside the store, the highest token is kept in the counter file, old files are still read.

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "app/counter_file.h"
#include "app/counter_store.h"
#include "harness/child.h"
#include "harness/temp_dir.h"

using namespace forklock;

namespace {

std::uint64_t plus_one(std::uint64_t v) { return v + 1; }

std::string slurp(const std::filesystem::path& p)
{
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

TEST_CASE("counter_file: a fenced slot decodes back to its seq, value and token, and wins over "
          "the format-2 slots",
          "[counter_file][fence]")
{
    using namespace counter_file;
    const std::string slot = encode_fenced_slot({7, 42, 1234});
    REQUIRE(slot.size() == kFencedSlotSize);
    const auto back = decode_fenced_slot(slot);
    REQUIRE(back);
    CHECK(back->seq == 7);
    CHECK(back->value == 42);
    CHECK(back->token == 1234);
    std::string changed = slot;
    changed[45] = changed[45] == '1' ? '2' : '1'; // a byte of the token
    CHECK_FALSE(decode_fenced_slot(changed));

    std::string file = encode_file(5, 9);
    REQUIRE(file.size() == kFencedFileSize);
    CHECK(decode_file(file)->value == 5);
    CHECK(decode_file(file)->token == 9);
    CHECK(next_slot(*decode_file(file)) == 3);
    // A torn fenced slot: the other fenced slot, not the format-2 ones, holds the value.
    file.replace(slot_offset(3), kFencedSlotSize, encode_fenced_slot({2, 6, 10}));
    CHECK(decode_file(file)->value == 6);
    file[slot_offset(3) + 30] = '#';
    CHECK(decode_file(file)->value == 5);
}

TEST_CASE("CounterStore: a fenced write with a token lower than the highest that wrote the key is "
          "refused and writes nothing",
          "[counter_store][fence]")
{
    harness::TempDir dir;
    CounterStore store(dir.path());
    CHECK(store.update_fenced("k", 34, plus_one) == 1);
    CHECK(store.highest_token("k") == 34);
    bool called = false;
    try {
        (void)store.update_fenced("k", 33, [&](std::uint64_t v) {
            called = true;
            return v + 1;
        });
        FAIL("the stale write was accepted");
    } catch (const StaleTokenError& e) {
        CHECK(e.token() == 33);
        CHECK(e.highest() == 34);
        CHECK(e.key() == "k");
    }
    CHECK_FALSE(called);
    CHECK(store.read("k") == 1);
    CHECK(store.update_fenced("k", 34, plus_one) == 2); // the same holder writes again
    CHECK(store.update_fenced("k", 40, plus_one) == 3);
    CHECK(store.highest_token("k") == 40);
}

TEST_CASE("CounterStore: an old counter file is read, and its first fenced write keeps its value",
          "[counter_store][fence]")
{
    harness::TempDir dir;
    CounterStore store(dir.path());
    store.write("old", 41); // format 2: no token
    REQUIRE(slurp(dir.path() / "old").size() == counter_file::kFileSize);
    CHECK(store.highest_token("old") == 0);
    CHECK(store.update_fenced("old", 1, plus_one) == 42);
    CHECK(store.read("old") == 42);
    CHECK(store.highest_token("old") == 1);
    // An unfenced write (a restart without --fencing) keeps the highest token.
    store.write("old", 50);
    CHECK(store.read("old") == 50);
    CHECK(store.highest_token("old") == 1);
    CHECK_THROWS_AS(store.update_fenced("old", 0, plus_one), StaleTokenError);
}

TEST_CASE("CounterStore: fenced updates from threads and processes lose no increment",
          "[counter_store][fence][fork]")
{
    harness::TempDir dir;
    CounterStore store(dir.path());
    // No lock table at all: the store's own step is atomic; every writer has the same token.
    auto hammer = [&] {
        for (int i = 0; i < 300; ++i) (void)store.update_fenced("k", 5, plus_one);
    };
    std::vector<harness::Child> kids;
    for (int p = 0; p < 2; ++p)
        kids.emplace_back([&] {
            std::thread a(hammer), b(hammer);
            a.join();
            b.join();
            return 0;
        });
    for (auto& k : kids) REQUIRE(k.wait() == 0);
    CHECK(store.read("k") == 1200);
}
