// LockTable's dictionary side: key rules, a full table, slot reuse, timeouts, crash repair.

#include <catch2/catch.hpp>

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "harness/child.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"
#include <forklock/lock_table.h>
#include "locks/primitives/key_file_lock.h"
#include "os/memory_region.h"

using namespace forklock;
using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

// make: a table whose flock files (if any) go to `dir`, the test's own.
LockTable make(LockMode mode, std::size_t capacity, const TempDir& dir)
{
    LockTableOptions o;
    o.mode = mode;
    o.capacity = capacity;
    o.lock_dir = dir.path();
    return LockTable(o);
}

// kill_churning_processes: `rounds` times, a child locks 500 keys in turn through `t` (so nearly
// every lock evicts and binds), and is SIGKILLed at a random instant, reaped and cleaned up after
// as a supervisor would.
void kill_churning_processes(LockTable& t, int rounds, unsigned seed)
{
    std::mt19937 rng(seed);
    for (int round = 0; round < rounds; ++round) {
        const std::uint64_t evictions = t.stats().evictions;
        Child churn([&]() -> int {
            for (unsigned i = 0;; ++i) (void)t.lock("churn-" + std::to_string(i % 500));
        });
        REQUIRE(wait_until([&] { return t.stats().evictions > evictions; })); // it is churning
        // A random instant, not a wait for a condition: where the kill lands is the point.
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
        churn.kill();
        t.release_owned_by(churn.pid());
    }
}

} // namespace

TEST_CASE("LockTable: empty and over-long keys are rejected with InvalidKeyError", "[keys]")
{
    TempDir dir;
    LockTable t = make(LockMode::mutex, 16, dir);
    CHECK_THROWS_AS(t.lock(""), InvalidKeyError);
    CHECK_THROWS_AS(t.lock(std::string(LockTable::kMaxKeyLength + 1, 'k')), InvalidKeyError);
    CHECK(t.lock(std::string(LockTable::kMaxKeyLength, 'k')).owns_lock());
}

TEST_CASE("LockTable: bad options are rejected before anything is made", "[keys]")
{
    LockTableOptions o;
    o.capacity = 0;
    CHECK_THROWS_AS(LockTable(o), std::invalid_argument);
    o.capacity = LockTable::kMaxCapacity + 1;
    CHECK_THROWS_AS(LockTable(o), std::invalid_argument);
    o.mode = LockMode::flock;
    o.capacity = 8;
    o.lock_dir = "/nonexistent/forklock";
    CHECK_THROWS_AS(LockTable(o), std::invalid_argument);
}

TEST_CASE("LockTable: distinct keys never share a lock", "[keys]")
{
    const auto mode =
        GENERATE(LockMode::thread, LockMode::semaphore, LockMode::mutex, LockMode::flock);
    TempDir dir;
    LockTable t = make(mode, 256, dir);
    std::vector<KeyGuard> held;
    for (int i = 0; i < 200; ++i) held.push_back(t.try_lock("key-" + std::to_string(i)));
    for (auto& g : held) REQUIRE(g.owns_lock());
    CHECK_FALSE(t.try_lock("key-7").owns_lock());
    CHECK(t.stats().active == 200);
}

TEST_CASE("LockTable: a full table throws TableFullError and recovers when a key is released",
          "[keys]")
{
    const auto mode = GENERATE(LockMode::thread, LockMode::semaphore, LockMode::mutex);
    TempDir dir;
    LockTable t = make(mode, 4, dir);
    std::vector<KeyGuard> held;
    for (int i = 0; i < 4; ++i) held.push_back(t.lock("key-" + std::to_string(i)));
    CHECK_THROWS_AS(t.lock("key-4"), TableFullError);
    CHECK(t.stats().full_errors == 1);
    held.pop_back();
    CHECK(t.lock("key-4").owns_lock());
    CHECK(t.stats().keys_high_water == 4);
}

TEST_CASE("LockTable: 100,000 distinct keys reuse a bounded number of slots", "[keys]")
{
    TempDir dir;
    LockTable t = make(LockMode::mutex, 1024, dir);
    for (int i = 0; i < 100000; ++i) {
        KeyGuard g = t.lock("user:" + std::to_string(i));
        REQUIRE(g.owns_lock());
    }
    const TableStats s = t.stats();
    CHECK(s.keys <= 1024);
    CHECK(s.active == 0);
    CHECK(s.evictions >= 100000 - 1024);
    // An idle key keeps its statistics until its slot is needed.
    for (int i = 0; i < 3; ++i) (void)t.lock("hot");
    CHECK(t.key_stats(1).at(0).key == "hot");
    CHECK(t.key_stats(1).at(0).acquisitions == 3);
}

namespace {

// Every worker locks random keys of 32 in a table of 8 slots, so almost every acquisition evicts
// another key's slot, and checks that nobody else is inside the same key meanwhile.
struct ChurnBoard {
    std::atomic<int> inside[32];
    std::atomic<long> overlaps;
    std::atomic<long> ops;
    std::atomic<long> evictions;
};

void churn(LockTable& t, ChurnBoard& board, unsigned seed, int rounds)
{
    std::mt19937 rng(seed);
    for (int i = 0; i < rounds; ++i) {
        const unsigned k = rng() % 32;
        KeyGuard g = (i % 4 == 0) ? t.try_lock("churn-" + std::to_string(k))
                                  : t.lock("churn-" + std::to_string(k));
        if (!g) continue;
        if (board.inside[k].fetch_add(1) != 0) board.overlaps.fetch_add(1);
        for (int spin = 0; spin < 200; ++spin) // stay inside a while, so overlaps would show
            std::atomic_signal_fence(std::memory_order_seq_cst);
        board.inside[k].fetch_sub(1);
        board.ops.fetch_add(1);
    }
    board.evictions.fetch_add(static_cast<long>(t.stats().evictions));
}

} // namespace

TEST_CASE("LockTable: a key is never held twice while a small table keeps rebinding its slots",
          "[keys][fork]")
{
    // flock: each process makes its own table after fork, so evicting a key in one table (which
    // removes its lock file) races with processes locking that key through theirs.
    const auto mode =
        GENERATE(LockMode::thread, LockMode::semaphore, LockMode::mutex, LockMode::flock);
    TempDir dir;
    auto make_here = [&] {
        LockTableOptions o;
        o.mode = mode;
        o.capacity = 8;
        o.lock_dir = dir.path();
        return LockTable(o);
    };
    LockTable t = make_here();
    MemoryRegion shared(sizeof(ChurnBoard), MemoryRegion::Sharing::shared);
    auto& board = *new (shared.data()) ChurnBoard{};
    constexpr int kWorkers = 3, kRounds = 20000;
    if (mode == LockMode::thread) {        // one process: thread mode only excludes threads
        std::vector<std::jthread> threads; // joined at the end of the block
        for (int w = 0; w < kWorkers; ++w)
            threads.emplace_back([&, w] { churn(t, board, 7 + w, kRounds); });
    } else {
        std::vector<Child> kids;
        for (int w = 0; w < kWorkers; ++w)
            kids.emplace_back([&, w] {
                if (mode == LockMode::flock) {
                    LockTable own = make_here();
                    churn(own, board, 7 + w, kRounds);
                } else {
                    churn(t, board, 7 + w, kRounds);
                }
                return 0;
            });
        for (Child& k : kids) REQUIRE(k.wait() == 0);
    }
    CHECK(board.overlaps.load() == 0);
    CHECK(board.ops.load() > kWorkers * kRounds / 2);
    CHECK(board.evictions.load() > 1000);
    CHECK(t.stats().active == 0);
}

TEST_CASE("LockTable: flock removes the lock files of evicted keys but never a held one",
          "[keys][fork]")
{
    TempDir dir;
    LockTableOptions o;
    o.mode = LockMode::flock;
    o.capacity = 8;
    o.lock_dir = dir.path();
    LockTable t(o);
    KeyGuard held = t.lock("held");
    for (int i = 0; i < 200; ++i) REQUIRE(t.lock("key-" + std::to_string(i)).owns_lock());
    // Key files stay bounded by capacity; beside them, .fence keeps the removed ones' tokens.
    const auto files = std::count_if(
        std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator(),
        [](const auto& e) { return e.path().extension() == ".lock"; });
    CHECK(files <= 8);
    CHECK(std::filesystem::exists(dir.path() / ".fence"));
    CHECK(std::filesystem::exists(dir.path() / "held.lock"));
    // The held key still excludes a process with a table of its own (the file is the meeting
    // point).
    Child other([&] {
        LockTable own(o);
        return own.try_lock("held").owns_lock() ? 1 : 0;
    });
    CHECK(other.wait() == 0);
}

TEST_CASE("LockTable: lock_for gives up after its timeout and counts nothing", "[keys]")
{
    const auto mode =
        GENERATE(LockMode::thread, LockMode::semaphore, LockMode::mutex, LockMode::flock);
    TempDir dir;
    LockTable t = make(mode, 16, dir);
    KeyGuard g = t.lock("k");
    // Assertions stay on the main thread (Catch2 v2): the thread only records what it saw.
    bool got = true;
    std::chrono::steady_clock::duration took{};
    std::jthread([&] {
        const auto start = std::chrono::steady_clock::now();
        got = t.lock_for("k", 50ms).owns_lock();
        took = std::chrono::steady_clock::now() - start;
    }).join();
    CHECK_FALSE(got);
    CHECK(took >= 50ms);
    CHECK(t.key_stats().at(0).acquisitions == 1);
    CHECK(t.stats().active == 1);
}

TEST_CASE(
    "LockTable: a waiting thread gets the key when the holder unlocks, and the wait is counted",
    "[keys]")
{
    const auto mode =
        GENERATE(LockMode::thread, LockMode::semaphore, LockMode::mutex, LockMode::flock);
    TempDir dir;
    LockTable t = make(mode, 16, dir);
    KeyGuard g = t.lock("k");
    std::atomic<bool> got{false};
    std::chrono::nanoseconds waited{};
    std::jthread other([&] { // bounded, so that a failed REQUIRE below joins it in time
        KeyGuard h = t.lock_for("k", 10s);
        waited = h.waited();
        got = h.owns_lock();
    });
    REQUIRE(wait_until([&] { return t.key_stats().at(0).waiters == 1; }));
    CHECK_FALSE(got.load());
    g.unlock();
    other.join();
    CHECK(got.load());
    CHECK(waited > 0ns);
    const KeyStats k = t.key_stats().at(0);
    CHECK(k.acquisitions == 2);
    CHECK(k.contended == 1);
    CHECK(k.wait_ns_max > 0);
}

namespace {

// asleep: whether thread `tid` of this process is blocked in the kernel (state S), as a waiter is
// once it sleeps on its lock rather than on its way to it.
bool asleep(pid_t tid)
{
    std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'S';
}

// OneCpu: pins the calling thread, and the threads it starts, to the CPU it runs on, and restores
// its CPU mask at the end of the scope. With the other thread at SCHED_IDLE (idle_priority),
// whatever the pinned thread does between two sleeps happens before the other thread runs.
class OneCpu {
public:
    OneCpu()
    {
        saved_ = ::pthread_getaffinity_np(::pthread_self(), sizeof old_, &old_) == 0;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(::sched_getcpu(), &one);
        pinned_ = saved_ && ::pthread_setaffinity_np(::pthread_self(), sizeof one, &one) == 0;
    }
    ~OneCpu()
    {
        if (pinned_) (void)::pthread_setaffinity_np(::pthread_self(), sizeof old_, &old_);
    }
    OneCpu(const OneCpu&) = delete;
    OneCpu& operator=(const OneCpu&) = delete;

private:
    cpu_set_t old_{};
    bool saved_ = false;
    bool pinned_ = false;
};

void idle_priority()
{
    const sched_param none{};
    (void)::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &none);
}

} // namespace

// A waiter pins nothing in these modes, so while it waits its key's slot can be evicted (once the
// holder lets go) and given to another key. It must then look its key up again, not wait for the
// new key's holder.
TEST_CASE(
    "LockTable: a waiter whose slot is given to another key does not wait for that key's holder",
    "[keys]")
{
    const auto mode = GENERATE(LockMode::thread, LockMode::semaphore, LockMode::mutex);
    CAPTURE(to_string(mode));
    TempDir dir;
    // B must take A's slot between A's unlock and the waiter's wakeup: the waiter runs at idle
    // priority on our CPU, so it wakes only once we sleep. Should it win anyway (a CPU that could
    // not be pinned), B finds the table full and the case is not exercised: try again, a fresh
    // table each time, until it is.
    const OneCpu pinned;
    bool exercised = false;
    int tries = 0;
    for (; tries < 50 && !exercised; ++tries) {
        LockTable t = make(mode, 2, dir);
        KeyGuard a = t.lock("A");
        KeyGuard c = t.lock("C"); // both slots held: the next new key can only take A's
        std::atomic<bool> got{false}, done{false};
        std::atomic<pid_t> tid{0};
        std::jthread waiter([&] { // joined on the way out
            idle_priority();
            tid = ::gettid();
            // Holds A until told: while it does, B cannot take A's slot, so a B bound means the
            // waiter was still waiting then.
            KeyGuard h = t.lock_for("A", 3s);
            got = h.owns_lock();
            (void)wait_until([&] { return done.load(); }, 5s);
        });
        REQUIRE(wait_until([&] {
            return t.key_stats().at(0).waiters + t.key_stats().at(1).waiters == 1 && asleep(tid);
        }));
        a.unlock();
        KeyGuard b;
        try {
            b = t.lock("B"); // takes A's slot: C is held and the waiter pins nothing
            exercised = true;
        } catch (const TableFullError&) {
            // The waiter was first and holds A in its slot, C is held: nothing to evict.
        }
        c.unlock(); // a slot for A to come back to
        const bool in_time =
            wait_until([&] { return got.load(); }, 2s); // long before lock_for's 3 s
        done = true;
        waiter.join();
        if (exercised) CHECK(in_time);
        CHECK(got.load());
    }
    INFO("tries: " << tries);
    CHECK(exercised);
}

TEST_CASE("LockTable: processes killed at random instants inside the table leave every slot usable",
          "[keys][fork][recovery]")
{
    const auto mode = GENERATE(LockMode::semaphore, LockMode::mutex);
    INFO("mode " << to_string(mode));
    TempDir dir;
    LockTable t = make(mode, 64, dir);
    kill_churning_processes(t, 15, 42);
    // Every slot still works: holding as many keys as the table has slots needs all of them, so a
    // slot whose lock a killed evictor had claimed (and nobody cleared) would show up here. And no
    // two keys were merged.
    std::vector<KeyGuard> held;
    for (int i = 0; i < 64; ++i) {
        held.push_back(t.lock_for("after-" + std::to_string(i), 1s));
        REQUIRE(held.back().owns_lock());
    }
    CHECK_FALSE(t.try_lock("after-3").owns_lock());
    CHECK(t.stats().keys == 64);
}

TEST_CASE("LockTable flock: processes killed at random instants leave at most one slot pinned",
          "[keys][fork][recovery]")
{
    // By reference, a kill between pinning a slot and writing the owner leaves a reference nobody
    // can return (slot_table.h). The file lock is taken before the pin, so that window is a few
    // instructions, not the file syscalls where the process spends its time: killed 30 times, a
    // churning process used to leave most of the slots pinned, and now leaves none (at most one,
    // if a kill ever lands inside those instructions).
    TempDir dir;
    LockTable t = make(LockMode::flock, 64, dir);
    kill_churning_processes(t, 30, 7);
    CHECK(t.stats().active <= 1);
    std::vector<KeyGuard> held;
    for (int i = 0; i < 63; ++i) {
        held.push_back(t.try_lock("after-" + std::to_string(i)));
        REQUIRE(held.back().owns_lock());
    }
}

TEST_CASE("lock_file_name maps every key to one file name inside the directory", "[keys]")
{
    CHECK(lock_file_name("counter-1.txt") == "counter-1.txt.lock");
    CHECK(lock_file_name("../etc/passwd") == "%2E.%2Fetc%2Fpasswd.lock");
    CHECK(lock_file_name("a%2F") != lock_file_name("a/"));
    CHECK(lock_file_name("a b") == "a%20b.lock");
}
