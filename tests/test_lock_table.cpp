// LockTable across fork(): which modes exclude processes, which lose updates, and recovery from a
// holder killed while holding.

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "harness/child.h"
#include "harness/shm_names.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"
#include <forklock/lock_table.h>
#include "os/memory_region.h"

using namespace forklock;
using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

// What the processes of one test share, in MAP_SHARED memory made before fork.
struct Shared {
    std::atomic<int> counter; // read and written non-atomically (load, then store): a plain RMW
    std::atomic<int> inside;  // processes inside the critical section now
    std::atomic<int> max_inside;
    std::atomic<int> ready;
};

class SharedBlock {
public:
    SharedBlock() : region_(sizeof(Shared), MemoryRegion::Sharing::shared) {}
    Shared& operator*() const { return *static_cast<Shared*>(region_.data()); }
    Shared* operator->() const { return static_cast<Shared*>(region_.data()); }

private:
    MemoryRegion region_;
};

LockTableOptions options_for(LockMode mode, const std::filesystem::path& dir, std::size_t cap = 64)
{
    LockTableOptions o;
    o.mode = mode;
    o.capacity = cap;
    o.lock_dir = dir;
    return o;
}

void enter(Shared& sh)
{
    const int now = sh.inside.fetch_add(1) + 1;
    int max = sh.max_inside.load();
    while (now > max && !sh.max_inside.compare_exchange_weak(max, now)) {}
}

// A read-modify-write of the shared counter under `key`, `n` times.
int increment_many(LockTable& table, Shared& sh, int n)
{
    for (int i = 0; i < n; ++i) {
        KeyGuard g = table.lock("counter");
        enter(sh);
        const int v = sh.counter.load(std::memory_order_relaxed);
        if (i % 64 == 0) std::this_thread::yield(); // widen the window now and then
        sh.counter.store(v + 1, std::memory_order_relaxed);
        sh.inside.fetch_sub(1);
    }
    return 0;
}

void run_processes(LockTable& table, Shared& sh, int processes, int per_process)
{
    std::vector<Child> kids;
    for (int p = 0; p < processes; ++p)
        kids.emplace_back([&] { return increment_many(table, sh, per_process); });
    for (Child& k : kids) REQUIRE(k.wait() == 0);
}

// Holds `key` in a child until killed; returns once the parent sees it held.
Child child_holding(LockTable& table, Shared& sh, const char* key)
{
    sh.ready = 0;
    Child child([&]() -> int {
        KeyGuard g = table.lock(key);
        sh.ready = 1;
        for (;;) ::pause();
    });
    REQUIRE(wait_until([&] { return sh.ready.load() == 1; }));
    return child;
}

} // namespace

TEST_CASE("LockTable: process-shared modes made before fork lose no update across 4 processes",
          "[lock_table][fork]")
{
    const auto mode = GENERATE(LockMode::semaphore, LockMode::mutex, LockMode::flock);
    INFO("mode " << to_string(mode));
    TempDir dir;
    SharedBlock sh;
    LockTable table(options_for(mode, dir.path()));
    run_processes(table, *sh, 4, mode == LockMode::flock ? 1000 : 5000);
    CHECK(sh->counter.load() == 4 * (mode == LockMode::flock ? 1000 : 5000));
    CHECK(sh->max_inside.load() == 1);
    const auto keys = table.key_stats();
    REQUIRE(keys.size() == 1);
    CHECK(keys[0].acquisitions == static_cast<std::uint64_t>(sh->counter.load()));
    CHECK(keys[0].owner_pid == 0);
    CHECK(own_semaphore_names() == 0);
}

TEST_CASE("LockTable: flock excludes processes that each made their own table after fork",
          "[lock_table][fork]")
{
    TempDir dir;
    SharedBlock sh;
    std::vector<Child> kids;
    for (int p = 0; p < 3; ++p)
        kids.emplace_back([&] {
            LockTable own(options_for(LockMode::flock, dir.path()));
            return increment_many(own, *sh, 1000);
        });
    for (Child& k : kids) REQUIRE(k.wait() == 0);
    CHECK(sh->counter.load() == 3000);
    CHECK(sh->max_inside.load() == 1);
}

TEST_CASE("LockTable: thread mode lets two processes hold the same key at once and lose updates",
          "[lock_table][fork]")
{
    // Same for semaphore and mutex tables made after fork: each process has its own.
    const auto row =
        GENERATE(std::pair{LockMode::thread, false}, std::pair{LockMode::semaphore, true},
                 std::pair{LockMode::mutex, true});
    // Named copies, not a structured binding: the lambdas below capture them (clang 14 cannot).
    const LockMode mode = row.first;
    const bool after_fork = row.second;
    INFO("mode " << to_string(mode) << (after_fork ? " made after fork" : " made before fork"));
    TempDir dir;
    SharedBlock sh;
    std::unique_ptr<LockTable> inherited;
    if (!after_fork) inherited = std::make_unique<LockTable>(options_for(mode, dir.path()));
    std::vector<Child> kids;
    for (int p = 0; p < 2; ++p)
        kids.emplace_back([&] {
            std::unique_ptr<LockTable> own;
            LockTable& t = after_fork
                               ? *(own = std::make_unique<LockTable>(options_for(mode, dir.path())))
                               : *inherited;
            KeyGuard g = t.lock("counter");
            const int v = sh->counter.load();
            sh->inside.fetch_add(1);
            // Both read before either writes: certain overlap, not luck. If the lock excluded
            // the other process this would time out and the child would fail.
            if (!wait_until([&] { return sh->inside.load() == 2; }, 5s)) return 1;
            sh->counter.store(v + 1);
            return 0;
        });
    for (Child& k : kids) CHECK(k.wait() == 0);
    CHECK(sh->counter.load() == 1); // two increments, one lost
}

TEST_CASE("LockTable: thread mode loses nothing between threads of one process", "[lock_table]")
{
    TempDir dir;
    SharedBlock sh;
    LockTable table(options_for(LockMode::thread, dir.path()));
    {
        std::vector<std::jthread> threads; // joined on the way out, a failed assertion included
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&] { increment_many(table, *sh, 20000); });
    }
    CHECK(sh->counter.load() == 80000);
    CHECK(sh->max_inside.load() == 1);
}

TEST_CASE("LockTable: mode none excludes nobody, not even threads", "[lock_table]")
{
    TempDir dir;
    LockTable table(options_for(LockMode::none, dir.path()));
    KeyGuard a = table.lock("k");
    KeyGuard b = table.try_lock("k");
    CHECK(a.owns_lock());
    CHECK(b.owns_lock());
}

TEST_CASE("LockTable: a key held by a SIGKILLed process is usable again within 1 s",
          "[lock_table][fork][recovery]")
{
    const auto mode = GENERATE(LockMode::semaphore, LockMode::mutex, LockMode::flock);
    INFO("mode " << to_string(mode));
    TempDir dir;
    SharedBlock sh;
    LockTable table(options_for(mode, dir.path()));
    Child holder = child_holding(table, *sh, "k");
    CHECK_FALSE(table.try_lock("k").owns_lock());
    holder.kill();
    // The supervisor's part (the server's master does this after waitpid).
    const std::size_t freed = table.release_owned_by(holder.pid());
    CHECK(freed == 1);
    KeyGuard g = table.lock_for("k", 1s);
    REQUIRE(g.owns_lock());
    CHECK(g.recovered_from() == holder.pid());
    const auto keys = table.key_stats();
    REQUIRE(keys.size() == 1);
    CHECK(keys[0].recoveries == 1);
    CHECK(keys[0].last_dead_owner == holder.pid());
    CHECK(table.stats().recoveries == 1);
}

TEST_CASE("LockTable: mutex and flock recover a dead holder's key without any supervisor",
          "[lock_table][fork][recovery]")
{
    const auto mode = GENERATE(LockMode::mutex, LockMode::flock);
    INFO("mode " << to_string(mode));
    TempDir dir;
    SharedBlock sh;
    LockTable table(options_for(mode, dir.path()));
    Child holder = child_holding(table, *sh, "k");
    holder.kill();
    KeyGuard g = table.lock_for("k", 1s);
    REQUIRE(g.owns_lock());
    CHECK(g.recovered_from() == holder.pid());
    g.unlock();
    CHECK(table.stats().active == 0); // the dead holder's reference was returned
}

TEST_CASE("LockTable: a waiter blocked on a dead holder's semaphore key is woken by the supervisor",
          "[lock_table][fork][recovery]")
{
    TempDir dir;
    SharedBlock sh;
    LockTable table(options_for(LockMode::semaphore, dir.path()));
    Child holder = child_holding(table, *sh, "k");
    Child waiter([&] { return table.lock_for("k", 10s).owns_lock() ? 0 : 1; });
    REQUIRE(wait_until([&] { return table.key_stats().at(0).waiters == 1; }));
    holder.kill();
    CHECK(table.release_owned_by(holder.pid()) == 1);
    CHECK(waiter.wait(2s) == 0);
}

TEST_CASE(
    "LockTable: a waiter killed while blocked stops being counted once the supervisor forgets it",
    "[lock_table][fork][recovery]")
{
    const auto mode = GENERATE(LockMode::semaphore, LockMode::mutex, LockMode::flock);
    TempDir dir;
    LockTable table(options_for(mode, dir.path()));
    KeyGuard held = table.lock("k");
    Child waiter([&] { return table.lock("k").owns_lock() ? 0 : 1; });
    REQUIRE(wait_until([&] { return table.key_stats().at(0).waiters == 1; }));
    waiter.kill();
    CHECK(table.key_stats().at(0).waiters == 1);      // nobody told the table yet
    CHECK(table.release_owned_by(waiter.pid()) == 0); // it held nothing...
    CHECK(table.key_stats().at(0).waiters == 0);      // ...and now waits on nothing
    CHECK(table.stats().active == 1);                 // our own hold
    held.unlock();
    CHECK(table.stats().active == 0); // flock: the dead waiter's slot reference went too
    CHECK(table.try_lock("k").owns_lock());
}

TEST_CASE("LockTable: with recovery off a dead holder's semaphore key stays locked",
          "[lock_table][fork][recovery]")
{
    TempDir dir;
    SharedBlock sh;
    auto o = options_for(LockMode::semaphore, dir.path());
    o.recover_dead_owners = false;
    LockTable table(o);
    Child holder = child_holding(table, *sh, "k");
    holder.kill();
    CHECK(table.release_owned_by(holder.pid()) == 0);
    CHECK_FALSE(table.lock_for("k", 300ms).owns_lock());
    CHECK(table.key_stats().at(0).owner_pid == holder.pid()); // the dead pid, forever
}

TEST_CASE("LockTable: release_owned_by leaves keys of other processes alone", "[lock_table][fork]")
{
    TempDir dir;
    SharedBlock sh;
    LockTable table(options_for(LockMode::semaphore, dir.path()));
    Child holder = child_holding(table, *sh, "k");
    CHECK(table.release_owned_by(holder.pid() + 100000) == 0);
    CHECK_FALSE(table.try_lock("k").owns_lock());
    holder.kill();
}

TEST_CASE("LockTable: owner names the process holding one key and 0 for a free one",
          "[lock_table][fork][owner]")
{
    const auto mode = GENERATE(LockMode::semaphore, LockMode::mutex, LockMode::flock);
    INFO("mode " << to_string(mode));
    TempDir dir;
    SharedBlock sh;
    LockTable table(options_for(mode, dir.path()));
    {
        KeyGuard idle = table.lock("idle");
    }
    Child holder = child_holding(table, *sh, "held");
    CHECK(table.owner("held") == holder.pid());
    CHECK(table.owner("idle") == 0);
    holder.kill();
    CHECK(table.owner("held") == holder.pid()); // dead, until someone recovers the key
    CHECK(table.release_owned_by(holder.pid()) == 1);
    CHECK(table.owner("held") == 0);
}

TEST_CASE("LockTable: owner of a key that has no slot binds none", "[lock_table][owner]")
{
    TempDir dir;
    LockTable table(options_for(LockMode::mutex, dir.path()));
    KeyGuard g = table.lock("held");
    CHECK(table.owner("held") == ::getpid());
    CHECK(table.owner("never-locked") == 0);
    CHECK(table.owner("") == 0);
    CHECK(table.stats().keys == 1);
}

TEST_CASE("LockTable: a guard in a mode without a lock server is held until its unlock",
          "[lock_table][guard]")
{
    const auto mode = GENERATE(LockMode::none, LockMode::thread, LockMode::semaphore,
                               LockMode::mutex, LockMode::flock);
    INFO("mode " << to_string(mode));
    TempDir dir;
    LockTable table(options_for(mode, dir.path()));
    KeyGuard g = table.lock("k");
    CHECK(g.still_held());
    CHECK(g.unlock()); // nothing can take a held key away from its holder in these modes
    CHECK_FALSE(g.still_held());
    CHECK(g.unlock()); // an empty guard has nothing to lose
    CHECK_FALSE(KeyGuard().still_held());
}
