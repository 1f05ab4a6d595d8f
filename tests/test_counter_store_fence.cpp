// CounterStore::update_fenced (the server's --fencing): the fencing check and the write are one
// step inside the store, the highest token that wrote is kept in the counter file, old files are
// still read.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <string>

#include "app/counter_file.h"
#include "app/counter_store.h"
#include "app/fence_locks.h"
#include "harness/child.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"
#include "os/memory_region.h"
#include "os/unique_fd.h"

using namespace forklock;

namespace {

std::uint64_t plus_one(std::uint64_t v) { return v + 1; }

std::string slurp(const std::filesystem::path& p)
{
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// What the processes of a test share: tokens handed out in order, and how far each got.
struct Shared {
    std::atomic<std::uint64_t> next_token{0};
    std::atomic<std::uint64_t> highest_accepted{0};
    std::atomic<int> finished{0};
    std::atomic<int> holding{0};
    std::atomic<std::uint64_t> stale_after{0};
};

struct SharedState {
    MemoryRegion region{sizeof(Shared), MemoryRegion::Sharing::shared};
    Shared* shared = new (region.data()) Shared; // trivially destructible: the region frees it
    Shared& operator*() const { return *shared; }
};

struct ProcessesFixture {
    explicit ProcessesFixture(const char* name) : temp(name) {}
    harness::TempDir temp;
    SharedState state;
};

// A writer with its own store: takes tokens in turn and makes `n` fenced increments of "k".
int fenced_writer(const std::filesystem::path& dir, Shared& shared, int n)
{
    CounterStore store(dir);
    for (int i = 0; i < n; ++i) {
        const std::uint64_t token = shared.next_token.fetch_add(1) + 1;
        try {
            (void)store.update_fenced("k", token, plus_one);
        } catch (const StaleTokenError&) {
            continue;
        }
        // Tokens only go up: a lower one in the file now is a stale write that landed after ours.
        if (store.highest_token("k") < token) shared.stale_after.fetch_add(1);
        std::uint64_t seen = shared.highest_accepted.load();
        while (seen < token && !shared.highest_accepted.compare_exchange_weak(seen, token)) {}
    }
    shared.finished.fetch_add(1);
    return 0;
}

// A child's body: holds the store's lock of "k" in `dir` (its stripe), calls `while_held` with the
// directory's fd, says so in `shared.holding` and waits to be killed. 1 if while_held fails.
template <typename WhileHeld>
int hold_stripe_until_killed(const std::filesystem::path& dir, Shared& shared, WhileHeld while_held)
{
    UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    FenceLocks locks(dir_fd.get());
    FenceLocks::Guard held(locks, "k");
    if (!while_held(dir_fd.get())) return 1;
    shared.holding.store(1);
    for (;;) ::pause();
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

TEST_CASE("CounterStore: two stores in two processes on one directory never let a stale token "
          "write: the highest token in the file never goes down",
          "[counter_store][fence]")
{
    const ProcessesFixture fixture("fence-procs");
    const auto& dir = fixture.temp.path();
    Shared& shared = *fixture.state;
    constexpr int kWrites = 20000;
    harness::Child a([&] { return fenced_writer(dir, shared, kWrites); });
    harness::Child b([&] { return fenced_writer(dir, shared, kWrites); });
    CounterStore watcher(dir);
    std::uint64_t last = 0, drops = 0;
    // A stale write accepted would carry the file's token back below one already written.
    const bool done = harness::wait_until(
        [&] {
            const std::uint64_t now = watcher.highest_token("k");
            drops += now < last;
            last = std::max(last, now);
            return shared.finished.load() == 2;
        },
        std::chrono::seconds(120), std::chrono::milliseconds(0));
    REQUIRE(done);
    REQUIRE(a.wait() == 0);
    REQUIRE(b.wait() == 0);
    CHECK(drops == 0);
    CHECK(shared.stale_after.load() == 0);
    CHECK(watcher.highest_token("k") == shared.highest_accepted.load());
    CHECK(std::filesystem::exists(dir / FenceLocks::kFileName));
}

TEST_CASE("CounterStore: a holder SIGKILLed while holding the store's lock of a key does not stop "
          "the next fenced writes",
          "[counter_store][fence]")
{
    const ProcessesFixture fixture("fence-kill");
    const auto& dir = fixture.temp.path();
    Shared& shared = *fixture.state;
    CounterStore store(dir);
    CHECK(store.update_fenced("k", 1, plus_one) == 1);
    harness::Child holder(
        [&] { return hold_stripe_until_killed(dir, shared, [](int) { return true; }); });
    REQUIRE(harness::wait_until([&] { return shared.holding.load() == 1; }));
    holder.kill();
    // In a child, so that a write that blocks for ever fails the test instead of hanging it.
    harness::Child writer([&] {
        CounterStore other(dir);
        const bool ok = other.update_fenced("k", 2, plus_one) == 2 &&
                        other.update_fenced("k", 3, plus_one) == 3;
        return ok ? 0 : 1;
    });
    CHECK(writer.wait(std::chrono::seconds(30)) == 0);
    CHECK(store.update_fenced("k", 4, plus_one) == 4);
    CHECK(store.read("k") == 4);
    CHECK(store.highest_token("k") == 4);
}

TEST_CASE("CounterStore: a fenced update reads the file again when the holder it took the store's "
          "lock over from died after writing",
          "[counter_store][fence]")
{
    // The dead holder wrote but never released the stripe, so never advanced its generation:
    // the generation alone would say the update's first read is still the file.
    const ProcessesFixture fixture("fence-died");
    const auto& dir = fixture.temp.path();
    Shared& shared = *fixture.state;
    CounterStore store(dir);
    CHECK(store.update_fenced("k", 1, plus_one) == 1);
    const auto late = [&](std::uint64_t v) {
        // Token 9's write, as the store makes it, then killed before its Guard ends.
        harness::Child holder([&] {
            return hold_stripe_until_killed(dir, shared, [&](int dir_fd) {
                const auto state = counter_file::decode_file(slurp(dir / "k")).value();
                const std::size_t at = counter_file::next_slot(state, true);
                const std::string slot = counter_file::encode_at(at, {state.seq + 1, 42, 9});
                UniqueFd fd(::openat(dir_fd, "k", O_RDWR | O_CLOEXEC));
                const auto offset = static_cast<off_t>(counter_file::slot_offset(at));
                return ::pwrite(fd.get(), slot.data(), slot.size(), offset) == ssize_t(slot.size());
            });
        });
        REQUIRE(harness::wait_until([&] { return shared.holding.load() == 1; }));
        holder.kill();
        return v + 1;
    };
    CHECK_THROWS_AS(store.update_fenced("k", 5, late), StaleTokenError);
    CHECK(store.read("k") == 42);
    CHECK(store.highest_token("k") == 9);
}
