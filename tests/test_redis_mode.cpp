// The redis lock mode against a throwaway redis-server (harness/redis_server.h): exclusion between
// processes, tokens that grow, a lease that expires under its holder, timeouts, holder death, a
// Redis that goes away and comes back, and bad URLs. Skipped (exit 77) without redis-server.

#include <signal.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "harness/child.h"
#include "harness/racy_increments.h"
#include "harness/redis_server.h"
#include "harness/shared_block.h"
#include "harness/wait.h"
#include <forklock/lock_table.h>
#include <hiredis/hiredis.h>

using namespace forklock;
using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

// One server for the whole binary, made on the main thread (its PDEATHSIG follows that thread).
RedisServer& redis()
{
    if (!RedisServer::available()) {
        std::puts("SKIP: the redis tests need redis-server (apt-get install redis-server)");
        std::exit(77);
    }
    static RedisServer server;
    return server;
}

LockTableOptions redis_options(std::int64_t lease_ms = 0, std::string url = redis().url())
{
    LockTableOptions o;
    o.mode = LockMode::redis;
    o.capacity = 256;
    o.url = std::move(url);
    o.lease_ms = lease_ms;
    return o;
}

struct Shared {
    std::atomic<int> counter; // read and written non-atomically (load, then store): a plain RMW
    std::atomic<int> holding; // the child holds its key
    std::atomic<int> release; // the parent lets it go
    std::atomic<std::int64_t> at_ns; // when the child got its key (steady_clock: one for all)
};

std::int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// A child that makes its own table (after fork), holds `key` until told, then exits 0.
Child holder(SharedBlock<Shared>& sh, const std::string& key, LockTableOptions o = redis_options())
{
    return Child([&sh, key, o] {
        LockTable own(o);
        KeyGuard g = own.lock(key);
        sh->holding.store(1);
        return wait_until([&] { return sh->release.load() != 0; }, 30s) ? 0 : 2;
    });
}

// token_of: the fencing token Redis shows for `key`'s holder (0: not held).
std::uint64_t token_of(const LockTable& table, const std::string& key)
{
    for (const ServerLock& l : table.server_locks())
        if (l.key == key) return l.token;
    return 0;
}

} // namespace

TEST_CASE("RedisMode: tables made after fork exclude each other's increments", "[redis_mode]")
{
    SharedBlock<Shared> sh;
    constexpr int kEach = 200;
    auto work = [&, o = redis_options()] { // the server is made here, not in each child
        return racy_increments(o, sh->counter, kEach);
    };
    Child a(work);
    Child b(work);
    Child c(work);
    CHECK(a.wait(60s) == 0);
    CHECK(b.wait(60s) == 0);
    CHECK(c.wait(60s) == 0);
    CHECK(sh->counter.load() == 3 * kEach);
}

TEST_CASE("RedisMode: a key held in another process is not free until it lets go", "[redis_mode]")
{
    SharedBlock<Shared> sh;
    Child child = holder(sh, "busy");
    REQUIRE(wait_until([&] { return sh->holding.load() != 0; }, 20s));
    LockTable table(redis_options());
    CHECK_FALSE(table.try_lock("busy"));
    CHECK(table.try_lock("other"));
    sh->release.store(1);
    REQUIRE(child.wait() == 0);
    CHECK(table.try_lock("busy"));
}

TEST_CASE("RedisMode: each grant of a key carries a larger token than the one before",
          "[redis_mode]")
{
    LockTable table(redis_options());
    std::uint64_t before = 0;
    {
        KeyGuard g = table.lock("tokens");
        before = token_of(table, "tokens");
    }
    CHECK(before > 0);
    SharedBlock<Shared> sh;
    Child child = holder(sh, "tokens");
    REQUIRE(wait_until([&] { return sh->holding.load() != 0; }, 20s));
    const std::uint64_t childs = token_of(table, "tokens");
    sh->release.store(1);
    REQUIRE(child.wait() == 0);
    KeyGuard again = table.lock("tokens");
    const std::uint64_t after = token_of(table, "tokens");
    CHECK(childs > before);
    CHECK(after > childs);
}

TEST_CASE("RedisMode: a lease that expires lets a waiter in, and the late unlock returns false",
          "[redis_mode]")
{
    constexpr std::int64_t kLeaseMs = 300;
    LockTable table(redis_options(kLeaseMs));
    const std::int64_t locked_at = now_ns();
    KeyGuard g = table.lock("leased");
    REQUIRE(g.still_held());
    SharedBlock<Shared> sh;
    Child waiter([&sh, o = redis_options(kLeaseMs)] {
        LockTable own(o);
        KeyGuard got = own.lock_for("leased", 10s);
        if (!got) return 3;
        sh->at_ns.store(now_ns());
        sh->holding.store(1);
        return wait_until([&] { return sh->release.load() != 0; }, 30s) ? 0 : 2;
    });
    REQUIRE(wait_until([&] { return sh->holding.load() != 0; }, 20s));
    // It got in when the lease ended, not before (Redis's expiry is to the millisecond).
    CHECK(sh->at_ns.load() - locked_at >= (kLeaseMs - 5) * 1'000'000);
    CHECK_FALSE(g.still_held());
    CHECK_FALSE(g.unlock()); // the compare-and-delete left the waiter's lock alone
    LockTable other(redis_options());
    CHECK_FALSE(other.try_lock("leased"));
    sh->release.store(1);
    CHECK(waiter.wait() == 0);
}

TEST_CASE("RedisMode: lock_for gives up at its timeout", "[redis_mode]")
{
    SharedBlock<Shared> sh;
    Child child = holder(sh, "slow");
    REQUIRE(wait_until([&] { return sh->holding.load() != 0; }, 20s));
    LockTable table(redis_options());
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(table.lock_for("slow", 150ms));
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took >= 140ms);
    CHECK(took < 2s);
    sh->release.store(1);
    KeyGuard g = table.lock_for("slow", 10s);
    CHECK(g.owns_lock());
    CHECK(child.wait() == 0);
}

TEST_CASE("RedisMode: a SIGKILLed holder's key is free once its lease ends", "[redis_mode]")
{
    SharedBlock<Shared> sh;
    Child child = holder(sh, "crash", redis_options(300));
    REQUIRE(wait_until([&] { return sh->holding.load() != 0; }, 20s));
    LockTable table(redis_options());
    REQUIRE_FALSE(table.try_lock("crash"));
    child.kill();
    KeyGuard g = table.lock_for("crash", 10s);
    CHECK(g.owns_lock());
}

TEST_CASE("RedisMode: a Redis that is down throws, and service resumes once it is back",
          "[redis_mode]")
{
    LockTable table(redis_options());
    CHECK(table.try_lock("before"));
    redis().stop();
    CHECK_THROWS_AS(table.lock("during"), LockServerError);
    CHECK_THROWS_AS(table.try_lock("during"), LockServerError);
    redis().start();
    KeyGuard g = table.lock_for("after", 5s);
    CHECK(g.owns_lock());
    CHECK(g.still_held());
    CHECK(g.unlock());
}

TEST_CASE("RedisMode: a bad URL, no URL, a negative lease or no Redis are refused", "[redis_mode]")
{
    CHECK_THROWS_AS(LockTable(redis_options(0, "")), std::invalid_argument);
    CHECK_THROWS_AS(LockTable(redis_options(-1)), std::invalid_argument);
    CHECK_THROWS_AS(LockTable(redis_options(0, "redis://:6379")), LockServerError);
    CHECK_THROWS_AS(LockTable(redis_options(0, redis().url() + ".missing")), LockServerError);
    for (const char* bad :
         {"redis://", "redis://host:0", "redis://host:99999", "redis://h:x", "redis://h/db",
          "redis://pw@h", "unix://relative", "http://h", "redis://[::1", "unix:///s?db=x"})
        CHECK_FALSE(LockTable::url_problem(LockMode::redis, bad).empty());
    for (const char* good : {"redis://localhost", "redis://127.0.0.1:6380/2", "redis://[::1]:7",
                             "unix:///run/redis.sock", "unix:///r.sock?db=3", "/run/r.sock"})
        CHECK(LockTable::url_problem(LockMode::redis, good) == "");
    CHECK(LockTable::url_problem(LockMode::postgres, "anything") == "");
}

TEST_CASE("RedisMode: server_locks shows a holder in another process with its lease left",
          "[redis_mode]")
{
    SharedBlock<Shared> sh;
    Child child = holder(sh, "shown", redis_options(60'000));
    REQUIRE(wait_until([&] { return sh->holding.load() != 0; }, 20s));
    LockTable table(redis_options());
    bool found = false;
    for (const ServerLock& l : table.server_locks()) {
        if (l.key != "shown") continue;
        found = true;
        CHECK(l.granted);
        CHECK(l.pid == child.pid());
        CHECK(l.ttl_ms > 50'000);
        CHECK(l.ttl_ms <= 60'000);
        CHECK(l.token > 0);
    }
    CHECK(found);
    sh->release.store(1);
    CHECK(child.wait() == 0);
}

namespace {

// kill_clients: CLIENT KILL TYPE normal on the test's Redis: every connection but this one ends.
long long kill_clients()
{
    redisContext* c = redisConnectUnix(redis().socket().c_str());
    REQUIRE(c != nullptr);
    REQUIRE(c->err == 0);
    auto* r = static_cast<redisReply*>(redisCommand(c, "CLIENT KILL TYPE normal"));
    REQUIRE(r != nullptr);
    const long long killed = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    redisFree(c);
    return killed;
}

} // namespace

TEST_CASE("RedisMode: a connection Redis closed while idle reconnects without an error, and "
          "keeps its held keys",
          "[redis_mode]")
{
    LockTable table(redis_options());
    KeyGuard held = table.lock("kept");
    REQUIRE(table.try_lock("warm"));
    CHECK(kill_clients() >= 1);
    KeyGuard next = table.lock_for("after-kill", 5s); // no LockServerError: reconnected first
    CHECK(next.owns_lock());
    CHECK(held.still_held()); // the lock is its value's, not the closed connection's
    CHECK(held.unlock());
}

TEST_CASE("RedisMode: a lock refused by a full table is let go at once, not at its lease's end",
          "[redis_mode]")
{
    LockTableOptions o = redis_options(60'000);
    o.capacity = 1;
    LockTable table(o);
    KeyGuard only = table.lock("only");
    CHECK_THROWS_AS(table.try_lock("second"), TableFullError);
    LockTable other(redis_options());
    CHECK(other.try_lock("second"));
}

TEST_CASE("RedisMode: tables on two databases of one Redis do not exclude each other",
          "[redis_mode]")
{
    LockTable db0(redis_options());
    LockTable db3(redis_options(0, redis().url() + "?db=3"));
    LockTable db3_too(redis_options(0, redis().url() + "?db=3"));
    KeyGuard a = db0.lock("db");
    KeyGuard b = db3.try_lock("db");
    CHECK(b.owns_lock());
    CHECK_FALSE(db3_too.try_lock("db"));
}

TEST_CASE("RedisMode: a holder whose lease expired leaves nothing for the supervisor to free",
          "[redis_mode]")
{
    LockTable table(redis_options(100)); // made before fork: the slots are shared
    Child child([&table] {
        KeyGuard g = table.lock("expired");
        if (!wait_until([&] { return !g.still_held(); }, 10s, 5ms)) return 2;
        return g.unlock() ? 3 : 0; // lost: nobody took it, but the lease is over
    });
    REQUIRE(child.wait() == 0);
    CHECK(table.release_owned_by(child.pid()) == 0); // its reference went with its unlock
    CHECK(table.stats().active == 0);
    CHECK(table.owner("expired") == 0);
    CHECK(table.try_lock("expired"));
}
