// PidSpinLock: the partitions' lock. The word names its holder; a holder's death is found out
// from its pid once it is reaped, never before.

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "harness/child.h"
#include "harness/wait.h"
#include "locks/primitives/pid_spin_lock.h"
#include "os/memory_region.h"

using namespace forklock;
using namespace forklock::harness;

namespace {

struct Shared {
    PidSpinLock lock;
    long counter; // plain: only the lock keeps increments whole
    std::atomic<int> ready;
};

struct Fixture {
    MemoryRegion memory{sizeof(Shared), MemoryRegion::Sharing::shared};
    Shared& s = *new (memory.data()) Shared{};
};

// exited_unreaped: waits until `pid` has exited, leaving it a zombie (WNOWAIT: not reaped).
bool exited_unreaped(pid_t pid)
{
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == 0;
}

} // namespace

TEST_CASE("PidSpinLock: the word holds the holder's pid until unlock", "[pid_spin_lock]")
{
    Fixture f;
    CHECK(f.s.lock.lock(4242) == MutexResult::acquired);
    CHECK(f.s.lock.owner.load() == 4242);
    f.s.lock.unlock();
    CHECK(f.s.lock.owner.load() == 0);
}

TEST_CASE("PidSpinLock: processes and their threads never lose an increment under it",
          "[pid_spin_lock][fork]")
{
    Fixture f;
    constexpr int kProcesses = 3, kThreads = 2, kEach = 20000;
    auto hammer = [&] {
        std::atomic<int> odd{0}; // lock() results other than acquired: nobody died
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < kEach; ++i) {
                    if (f.s.lock.lock(::getpid()) != MutexResult::acquired) ++odd;
                    f.s.counter = f.s.counter + 1;
                    f.s.lock.unlock();
                }
            });
        for (auto& t : threads) t.join();
        return odd.load() == 0 ? 0 : 1;
    };
    std::vector<Child> children;
    for (int p = 0; p < kProcesses; ++p) children.emplace_back(hammer);
    for (auto& c : children) CHECK(c.wait() == 0);
    CHECK(f.s.counter == long{kProcesses} * kThreads * kEach);
    CHECK(f.s.lock.owner.load() == 0);
}

TEST_CASE("PidSpinLock: a waiter takes the lock of a holder killed inside, once it is reaped",
          "[pid_spin_lock][fork][recovery]")
{
    Fixture f;
    Child holder([&]() -> int {
        (void)f.s.lock.lock(::getpid());
        f.s.ready = 1;
        for (;;) ::pause(); // inside until SIGKILLed
    });
    REQUIRE(wait_until([&] { return f.s.ready.load() == 1; }));
    std::atomic<int> result{-1};
    std::thread waiter([&] { result = static_cast<int>(f.s.lock.lock(::getpid())); });
    holder.kill(); // and reaps it
    const bool took = wait_until([&] { return result.load() != -1; });
    if (!took) f.s.lock.unlock(); // let the waiter finish before the test fails
    waiter.join();
    REQUIRE(took);
    CHECK(result.load() == static_cast<int>(MutexResult::owner_died));
    CHECK(f.s.lock.owner.load() == ::getpid());
    f.s.lock.unlock();
    CHECK(f.s.lock.lock(::getpid()) == MutexResult::acquired); // repaired once, plain after
}

TEST_CASE("PidSpinLock: a dead holder nobody has reaped yet keeps the lock",
          "[pid_spin_lock][fork][recovery]")
{
    // The pid of a zombie still answers kill(pid, 0), and it might not be dead yet as far as any
    // other process can tell: waiters wait for its parent, who is here the test.
    Fixture f;
    Child holder([&] {
        (void)f.s.lock.lock(::getpid());
        return 0; // exits holding it
    });
    REQUIRE(exited_unreaped(holder.pid()));
    std::atomic<int> result{-1};
    std::thread waiter([&] { result = static_cast<int>(f.s.lock.lock(::getpid())); });
    // Long enough for thousands of death checks (one every 64 rounds, a round 50 us at most).
    const bool took_early =
        wait_until([&] { return result.load() != -1; }, std::chrono::milliseconds(300));
    CHECK(holder.wait() == 0);
    const bool took = took_early || wait_until([&] { return result.load() != -1; });
    if (!took) f.s.lock.unlock();
    waiter.join();
    CHECK_FALSE(took_early);
    REQUIRE(took);
    CHECK(result.load() == static_cast<int>(MutexResult::owner_died));
    f.s.lock.unlock();
}
