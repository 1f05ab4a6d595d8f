// CounterStore::update_fenced (the server's --fencing): the fencing check and the write are one
// step inside the store, the highest token that wrote is kept in the counter file, old files are
// still read.

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <string>

#include "app/counter_file.h"
#include "app/counter_store.h"
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
    try {
        (void)store.update_fenced("k", 33, plus_one);
        FAIL("the stale write was accepted");
    } catch (const StaleTokenError& e) {
        CHECK(e.token() == 33);
        CHECK(e.highest() == 34);
        CHECK(e.key() == "k");
    }
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

TEST_CASE("CounterStore: a late write that lands between a newer holder's read and write is "
          "accepted, then overwritten: only the late holder's own increment is lost",
          "[counter_store][fence]")
{
    // The server never acknowledges that late increment: its unlock finds the key taken over.
    harness::TempDir dir;
    CounterStore store(dir.path());
    const std::uint64_t old_read = store.read("k"); // holder 33, then paused; its lease expires
    const std::uint64_t new_read = store.read("k"); // holder 34 reads
    store.fenced_write("k", 33, old_read + 1);      // 33 is still the highest that wrote
    store.fenced_write("k", 34, new_read + 1);
    CHECK(store.read("k") == 1);
    CHECK(store.highest_token("k") == 34);
    CHECK_THROWS_AS(store.fenced_write("k", 33, 7), StaleTokenError); // from now on, refused
    CHECK(store.read("k") == 1);
}

TEST_CASE("CounterStore: a holder that read before a newer holder's update has its write refused, "
          "and the newer update stands",
          "[counter_store][fence]")
{
    harness::TempDir dir;
    CounterStore store(dir.path());
    std::uint64_t newer = 0;
    // Holder 33 reads 0 and pauses; its lock is taken over by 34, which reads and writes 1.
    CHECK_THROWS_AS(store.update_fenced("k", 33,
                                        [&](std::uint64_t v) {
                                            newer = store.update_fenced("k", 34, plus_one);
                                            return v + 1; // 33's stale value, also 1
                                        }),
                    StaleTokenError);
    CHECK(newer == 1);
    CHECK(store.read("k") == 1);
    CHECK(store.highest_token("k") == 34);
    // While 34 holds the key again, 33 tries once more: refused, 34 being the highest that wrote.
    const std::uint64_t wrote = store.update_fenced("k", 34, [&](std::uint64_t v) {
        CHECK_THROWS_AS(store.update_fenced("k", 33, plus_one), StaleTokenError);
        return v + 1;
    });
    CHECK(wrote == 2);
    CHECK(store.read("k") == 2);
}
