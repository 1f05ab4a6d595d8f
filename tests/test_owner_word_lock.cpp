// OwnerWordLock (nginx shmtx): the owner is the lock, so a dead holder is always named.

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "harness/child.h"
#include "harness/wait.h"
#include "locks/primitives/owner_word_lock.h"
#include "os/memory_region.h"
#include "os/monotonic_clock.h"
#include "os/named_semaphore.h"

using namespace forklock;
using namespace forklock::harness;

namespace {
struct Fixture {
    MemoryRegion memory{sizeof(OwnerWord), MemoryRegion::Sharing::shared};
    OwnerWord& word = *new (memory.data()) OwnerWord{};
    NamedSemaphore sem =
        NamedSemaphore::create_unlinked(fmt::format("/forklock.{}.test", ::getpid()));
};
} // namespace

TEST_CASE("OwnerWordLock: the word holds the holder's pid from the very acquisition",
          "[owner_word]")
{
    Fixture f;
    OwnerWordLock first(f.word, f.sem, 4242);
    OwnerWordLock second(f.word, f.sem, 4343);
    REQUIRE(first.try_lock());
    CHECK(f.word.owner.load() == 4242);
    CHECK_FALSE(second.try_lock());
    first.unlock();
    CHECK(f.word.owner.load() == 0);
}

TEST_CASE("OwnerWordLock: unlock by a pid that does not hold it changes nothing", "[owner_word]")
{
    Fixture f;
    OwnerWordLock holder(f.word, f.sem, 10);
    OwnerWordLock other(f.word, f.sem, 11);
    REQUIRE(holder.try_lock());
    other.unlock();
    CHECK(f.word.owner.load() == 10);
    CHECK_FALSE(other.force_unlock(11));
    CHECK(other.force_unlock(10));
    CHECK(f.word.owner.load() == 0);
}

TEST_CASE("OwnerWordLock: a sleeping waiter in another process is woken by unlock",
          "[owner_word][fork]")
{
    Fixture f;
    OwnerWordLock parent(f.word, f.sem, ::getpid());
    REQUIRE(parent.try_lock());
    Child waiter([&] {
        OwnerWordLock child(f.word, f.sem, ::getpid());
        const bool blocked = !child.try_lock();
        const bool got = blocked && child.try_lock_until(monotonic_ns() + 10'000'000'000);
        return got && blocked ? 0 : 1;
    });
    REQUIRE(wait_until([&] { return f.word.wait.load() >= 1; })); // asleep on the semaphore
    parent.unlock();
    CHECK(waiter.wait(std::chrono::seconds(2)) == 0);
    CHECK(f.word.owner.load() == waiter.pid()); // it exited holding: the word still names it
}

TEST_CASE("OwnerWordLock: a timed lock gives up at its deadline", "[owner_word]")
{
    Fixture f;
    OwnerWordLock holder(f.word, f.sem, 1);
    OwnerWordLock waiter(f.word, f.sem, 2);
    REQUIRE(holder.try_lock());
    const std::int64_t start = monotonic_ns();
    const bool blocked = !waiter.try_lock();
    CHECK_FALSE(waiter.try_lock_until(start + 30'000'000));
    CHECK(blocked);
    CHECK(monotonic_ns() - start >= 30'000'000);
}

TEST_CASE("OwnerWordLock: std::unique_lock locks and unlocks through the handle", "[owner_word]")
{
    Fixture f;
    OwnerWordLock handle(f.word, f.sem, 77);
    {
        std::unique_lock<OwnerWordLock> held(handle);
        CHECK(f.word.owner.load() == 77);
        held.unlock();
        CHECK(f.word.owner.load() == 0);
        CHECK(held.try_lock());
        CHECK(handle.owner() == 77);
    }
    CHECK(f.word.owner.load() == 0);
}

TEST_CASE("OwnerWordLock: lock rechecks the word when its wake-up never comes",
          "[owner_word][fork]")
{
    Fixture f;
    OwnerWordLock dead(f.word, f.sem, 1);
    REQUIRE(dead.try_lock());
    Child waiter([&] {
        OwnerWordLock child(f.word, f.sem, ::getpid());
        child.lock();
        return 0;
    });
    REQUIRE(wait_until([&] { return f.word.wait.load() >= 1; })); // asleep on the semaphore
    // Freed as if the waker died between clearing the word and posting: nobody posts.
    f.word.owner.store(0);
    CHECK(waiter.wait(std::chrono::seconds(2)) == 0);
}
