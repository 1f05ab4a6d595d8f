// Fencing tokens and leases: every grant of a key has a greater token than the last (across
// eviction, a new table on the same lock dir or name, a restart's floor), and a semaphore key held
// past its lease is taken by a waiter, the old holder told so by still_held() and unlock().

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "harness/child.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"
#include <forklock/lock_table.h>
#include "os/memory_region.h"

using namespace forklock;
using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

LockTableOptions options_for(LockMode mode, const std::filesystem::path& dir, std::size_t cap = 64)
{
    LockTableOptions o;
    o.mode = mode;
    o.capacity = cap;
    o.lock_dir = dir;
    return o;
}

LockTableOptions leased(std::int64_t lease_ms)
{
    LockTableOptions o;
    o.mode = LockMode::semaphore;
    o.capacity = 16;
    o.lease_ms = lease_ms;
    return o;
}

// token_of: one grant of `key`, let go at once.
std::uint64_t token_of(LockTable& table, const char* key)
{
    KeyGuard g = table.lock(key);
    return g.token();
}

std::string unique_name(const char* what)
{
    static int n = 0;
    return fmt::format("test-{}-fence-{}-{}", ::getpid(), what, n++);
}

} // namespace

TEST_CASE("Fencing: each grant of a key has a greater token than the last, in every shared mode",
          "[lock_table][fence]")
{
    const LockMode mode = GENERATE(LockMode::semaphore, LockMode::mutex, LockMode::flock);
    INFO("mode " << to_string(mode));
    TempDir dir;
    LockTable table(options_for(mode, dir.path()));
    std::uint64_t last = 0;
    for (int i = 0; i < 5; ++i) {
        const std::uint64_t t = token_of(table, "k");
        CHECK(t > last);
        last = t;
    }
    KeyGuard tried = table.try_lock("k");
    REQUIRE(tried);
    CHECK(tried.token() > last);
    tried.unlock();
    KeyGuard timed = table.lock_for("k", 1s);
    CHECK(timed.token() > tried.token());
    CHECK(table.key_stats(1).at(0).last_token == timed.token());
    CHECK(KeyGuard().token() == 0);
}

TEST_CASE("Fencing: none and thread modes give token 0, having no grants to order across "
          "processes",
          "[lock_table][fence]")
{
    const LockMode mode = GENERATE(LockMode::none, LockMode::thread);
    TempDir dir;
    LockTable table(options_for(mode, dir.path()));
    CHECK(token_of(table, "k") == 0);
    CHECK_FALSE(issues_tokens(facts(mode)));
}

TEST_CASE("Fencing: a key's tokens keep growing after its slot was given to another key",
          "[lock_table][fence]")
{
    const LockMode mode = GENERATE(LockMode::semaphore, LockMode::mutex, LockMode::flock);
    INFO("mode " << to_string(mode));
    TempDir dir;
    LockTable table(options_for(mode, dir.path(), 1));
    for (int i = 0; i < 3; ++i) (void)token_of(table, "a");
    const std::uint64_t before = token_of(table, "a");
    (void)token_of(table, "b"); // evicts a: capacity 1
    CHECK(table.stats().evictions >= 1);
    CHECK(token_of(table, "a") > before);
}

TEST_CASE("Fencing: a new flock table on the same lock dir goes on above the last one's tokens, "
          "for a key whose lock file was removed too",
          "[lock_table][fence]")
{
    TempDir dir;
    std::uint64_t kept = 0, removed = 0;
    {
        LockTable first(options_for(LockMode::flock, dir.path(), 1));
        for (int i = 0; i < 4; ++i) removed = token_of(first, "gone");
        kept = token_of(first, "kept"); // evicts "gone", whose file goes
        CHECK_FALSE(std::filesystem::exists(dir.path() / "gone.lock"));
    }
    LockTable second(options_for(LockMode::flock, dir.path(), 4)); // a restart, or another server
    CHECK(token_of(second, "kept") > kept);
    CHECK(token_of(second, "gone") > removed);
}

TEST_CASE("Fencing: a joined named table goes on with its tokens, and a remade one starts above "
          "its token floor",
          "[lock_table][fence]")
{
    const LockMode mode = GENERATE(LockMode::semaphore, LockMode::mutex);
    INFO("mode " << to_string(mode));
    LockTableOptions o;
    o.mode = mode;
    o.capacity = 16;
    o.name = unique_name("named");
    std::uint64_t last = 0;
    {
        LockTable first(o);
        last = token_of(first, "k");
        LockTableOptions join = o;
        join.share = true;
        LockTable second(join);
        CHECK(token_of(second, "k") > last);
        last = token_of(first, "k");
    }
    // Every user gone: the name is made anew. A server seeds it above the last run's tokens.
    LockTable again(o);
    CHECK(again.origin() == TableOrigin::created);
    again.raise_token_floor(last);
    again.raise_token_floor(1); // a floor never goes down
    CHECK(token_of(again, "k") > last);
}

TEST_CASE("Lease: a waiter takes a semaphore key past its holder's lease; the old guard's "
          "still_held() turns false and its unlock() returns false",
          "[lock_table][lease]")
{
    LockTable table(leased(100));
    KeyGuard old = table.lock("k");
    REQUIRE(old.still_held());
    std::uint64_t taken_token = 0;
    std::chrono::nanoseconds waited{0};
    std::atomic<bool> done{false};
    std::thread waiter([&] {
        KeyGuard g = table.lock_for("k", 10s);
        taken_token = g.token();
        waited = g.waited();
        done = true;
        while (!g.still_held()) {} // never: it is the holder now
        g.unlock();
    });
    REQUIRE(wait_until([&] { return done.load(); }, 10s));
    waiter.join();
    CHECK(waited >= 90ms);
    CHECK(taken_token > old.token());
    CHECK_FALSE(old.still_held());
    CHECK_FALSE(old.unlock());
    KeyGuard after = table.try_lock("k"); // the taker let go: free, and the old unlock freed nothing
    CHECK(after);
    CHECK(after.token() > taken_token);
}

TEST_CASE("Lease: a holder that lets go within its lease keeps the key to the end", "[lease]")
{
    LockTable table(leased(5000));
    KeyGuard held = table.lock("k");
    std::thread other([&] { CHECK_FALSE(table.lock_for("k", 50ms)); });
    other.join();
    CHECK(held.still_held());
    CHECK(held.unlock());
}

TEST_CASE("Lease: a SIGSTOPped holder's key is taken by another process, and the holder learns "
          "it on waking",
          "[lock_table][lease][fork]")
{
    LockTable table(leased(100));
    MemoryRegion flag(sizeof(std::atomic<int>), MemoryRegion::Sharing::shared);
    auto* stage = new (flag.data()) std::atomic<int>(0);
    Child holder([&]() -> int {
        KeyGuard g = table.lock("k");
        stage->store(1);
        ::raise(SIGSTOP); // a pause longer than the lease: GC, swap, a debugger
        const bool lost = !g.still_held() && !g.unlock();
        return lost ? 0 : 1;
    });
    REQUIRE(wait_until([&] { return stage->load() == 1; }));
    KeyGuard g = table.lock_for("k", 10s);
    REQUIRE(g);
    CHECK(table.key_stats(1).at(0).lease_takeovers == 1);
    ::kill(holder.pid(), SIGCONT);
    CHECK(holder.wait() == 0);
    CHECK(g.still_held());
    CHECK(g.unlock());
}

TEST_CASE("Lease: a lease of 0 ms or less, or in a mode that cannot take a key over, is refused",
          "[lock_table][lease]")
{
    CHECK_THROWS_WITH(LockTable(leased(-1)), Catch::Contains("positive"));
    TempDir dir;
    LockTableOptions o = options_for(LockMode::mutex, dir.path());
    o.lease_ms = 100;
    CHECK_THROWS_AS(LockTable(o), std::invalid_argument);
    CHECK_THROWS_WITH(LockTable(o), Catch::Contains("live thread cannot be taken"));
    o.mode = LockMode::flock;
    CHECK_THROWS_WITH(LockTable(o), Catch::Contains("kernel"));
    CHECK(lease_problem(LockMode::semaphore).empty());
}
