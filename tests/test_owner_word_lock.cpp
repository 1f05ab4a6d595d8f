// OwnerWordLock (nginx shmtx): the owner is the lock, so a dead holder is always named.

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include <fmt/format.h>

#include "fork_helpers.h"
#include "os/memory_region.h"
#include "os/monotonic_clock.h"
#include "os/named_semaphore.h"
#include "locks/primitives/owner_word_lock.h"

using namespace forklock;
using namespace forklock::test;

namespace {
struct Fixture {
    MemoryRegion memory{sizeof(OwnerWord), MemoryRegion::Sharing::shared};
    OwnerWord& word = *new (memory.data()) OwnerWord{};
    NamedSemaphore sem = NamedSemaphore::create_unlinked(fmt::format("/forklock.{}.test", ::getpid()));
};
} // namespace

TEST_CASE("OwnerWordLock: the word holds the holder's pid from the very acquisition", "[owner_word]")
{
    Fixture f;
    REQUIRE(owner_try_lock(f.word, 4242));
    CHECK(f.word.owner.load() == 4242);
    CHECK_FALSE(owner_try_lock(f.word, 4343));
    owner_unlock(f.word, f.sem, 4242);
    CHECK(f.word.owner.load() == 0);
}

TEST_CASE("OwnerWordLock: unlock by a pid that does not hold it changes nothing", "[owner_word]")
{
    Fixture f;
    REQUIRE(owner_try_lock(f.word, 10));
    owner_unlock(f.word, f.sem, 11);
    CHECK(f.word.owner.load() == 10);
    CHECK_FALSE(owner_force_unlock(f.word, f.sem, 11));
    CHECK(owner_force_unlock(f.word, f.sem, 10));
    CHECK(f.word.owner.load() == 0);
}

TEST_CASE("OwnerWordLock: a sleeping waiter in another process is woken by unlock",
          "[owner_word][fork]")
{
    Fixture f;
    REQUIRE(owner_try_lock(f.word, ::getpid()));
    const pid_t waiter = fork_child([&] {
        bool blocked = false;
        const bool got = owner_lock(f.word, f.sem, ::getpid(), monotonic_ns() + 10'000'000'000, blocked);
        return got && blocked ? 0 : 1;
    });
    REQUIRE(wait_until([&] { return f.word.wait.load() >= 1; })); // asleep on the semaphore
    owner_unlock(f.word, f.sem, ::getpid());
    CHECK(reap(waiter, std::chrono::seconds(2)) == 0);
    CHECK(f.word.owner.load() == waiter); // it exited holding: the word still names it
}

TEST_CASE("OwnerWordLock: a timed lock gives up at its deadline", "[owner_word]")
{
    Fixture f;
    REQUIRE(owner_try_lock(f.word, 1));
    bool blocked = false;
    const std::int64_t start = monotonic_ns();
    CHECK_FALSE(owner_lock(f.word, f.sem, 2, start + 30'000'000, blocked));
    CHECK(blocked);
    CHECK(monotonic_ns() - start >= 30'000'000);
}
