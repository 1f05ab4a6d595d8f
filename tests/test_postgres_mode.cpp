// The postgres lock mode against a throwaway PostgreSQL (harness/pg_cluster.h): exclusion between
// sessions (processes, tables, threads), timeouts, holder death, a lost connection, exact keys.

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <unistd.h>

#include "harness/child.h"
#include "harness/pg_cluster.h"
#include "harness/racy_increments.h"
#include "harness/shared_block.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"
#include <forklock/lock_table.h>
#include "os/memory_region.h"
#include "os/unique_fd.h"

using namespace forklock;
using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

// One cluster for the whole binary, made on the main thread (its PDEATHSIG follows that thread).
PgCluster& cluster()
{
    static PgCluster c;
    return c;
}

LockTableOptions pg_options(std::string url = cluster().conninfo())
{
    LockTableOptions o;
    o.mode = LockMode::postgres;
    o.capacity = 256;
    o.url = std::move(url);
    return o;
}

// What the processes of one test share, in MAP_SHARED memory made before fork.
struct Shared {
    std::atomic<int> counter; // read and written non-atomically (load, then store): a plain RMW
    std::atomic<int> holding; // the child holds its key
    std::atomic<int> release; // the parent lets it go
};

// A child that makes its own table (after fork), holds `key` until told, then exits 0.
Child holder(SharedBlock<Shared>& sh, const std::string& key,
             std::chrono::milliseconds hold_after = 0ms)
{
    return Child([&sh, key, hold_after, o = pg_options()] { // the cluster is made here, not there
        LockTable own(o);
        KeyGuard g = own.lock(key);
        sh->holding.store(1);
        if (!wait_until([&] { return sh->release.load() != 0; }, 30s)) return 2;
        std::this_thread::sleep_for(hold_after);
        return 0;
    });
}

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;
Connection admin()
{
    const std::string conninfo = cluster().conninfo() + " application_name=forklock-test";
    Connection c(PQconnectdb(conninfo.c_str()), &PQfinish);
    REQUIRE(PQstatus(c.get()) == CONNECTION_OK);
    return c;
}
std::string query_value(PGconn* c, const char* sql)
{
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c, sql), &PQclear);
    REQUIRE(PQresultStatus(r.get()) == PGRES_TUPLES_OK);
    return PQgetvalue(r.get(), 0, 0);
}

} // namespace

TEST_CASE("PostgresMode: tables made after fork exclude each other's increments", "[postgres_mode]")
{
    SharedBlock<Shared> sh;
    constexpr int kEach = 150;
    auto work = [&, o = pg_options()] { // the cluster is made here, not in each child
        return racy_increments(o, sh->counter, kEach);
    };
    Child a(work);
    Child b(work);
    CHECK(a.wait(60s) == 0);
    CHECK(b.wait(60s) == 0);
    CHECK(sh->counter.load() == 2 * kEach);
}

TEST_CASE("PostgresMode: a key held in another process, table or thread is not free",
          "[postgres_mode]")
{
    SharedBlock<Shared> sh;
    Child child = holder(sh, "busy");
    REQUIRE(wait_until([&] { return sh->holding.load() != 0; }, 20s));
    LockTable table(pg_options());
    CHECK_FALSE(table.try_lock("busy"));
    CHECK(table.try_lock("other"));
    sh->release.store(1);
    REQUIRE(child.wait() == 0);
    CHECK(table.try_lock("busy"));

    LockTable second(pg_options()); // another table in this thread: another session
    KeyGuard mine = table.lock("shared-by-tables");
    CHECK_FALSE(second.try_lock("shared-by-tables"));
    bool other_thread_got_it = true;
    std::thread([&] {
        other_thread_got_it = table.try_lock("shared-by-tables").owns_lock();
    }).join();
    CHECK_FALSE(other_thread_got_it);
    mine.unlock();
    CHECK(second.try_lock("shared-by-tables"));
}

TEST_CASE("PostgresMode: lock_for gives up at its timeout, and its timeout ends with it",
          "[postgres_mode]")
{
    LockTable table(pg_options());
    SharedBlock<Shared> first;
    Child child = holder(first, "slow", 300ms);
    REQUIRE(wait_until([&] { return first->holding.load() != 0; }, 20s));
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(table.lock_for("slow", 100ms));
    CHECK(std::chrono::steady_clock::now() - start >= 90ms);
    first->release.store(1); // let go 300 ms from now: within the next timeout
    KeyGuard g = table.lock_for("slow", 600ms);
    REQUIRE(g.owns_lock());
    CHECK(g.waited() > 0ns);
    g.unlock();
    CHECK(child.wait() == 0);

    // A lock_for that waited and succeeded must not leave its 600 ms on the session: lock() then
    // waits for a holder that keeps the key longer than that.
    SharedBlock<Shared> second;
    Child next = holder(second, "slow", 900ms);
    REQUIRE(wait_until([&] { return second->holding.load() != 0; }, 20s));
    second->release.store(1);
    KeyGuard later = table.lock("slow");
    CHECK(later.owns_lock());
    CHECK(later.waited() >= 600ms);
    CHECK(next.wait() == 0);
}

TEST_CASE("PostgresMode: a SIGKILLed holder's key is free again", "[postgres_mode]")
{
    SharedBlock<Shared> sh;
    Child child = holder(sh, "crash");
    REQUIRE(wait_until([&] { return sh->holding.load() != 0; }, 20s));
    LockTable table(pg_options());
    REQUIRE_FALSE(table.try_lock("crash"));
    const auto killed = std::chrono::steady_clock::now();
    child.kill();
    KeyGuard g = table.lock_for("crash", 10s);
    const auto ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed);
    CHECK(g.owns_lock());
    std::printf("postgres mode: SIGKILL of the holder -> key taken by the next waiter: %.2f ms\n",
                ms.count());
}

namespace {

// terminate: ends every forklock session of this test process but `keep` (0: none) from the
// admin connection, and waits until they are gone (pg_terminate_backend's timeout).
void terminate(PGconn* admin, int keep = 0)
{
    const std::string sql =
        fmt::format("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'forklock host=% pid={}' AND pid <> {}",
                    ::getpid(), keep);
    query_value(admin, sql.c_str());
}

} // namespace

TEST_CASE("PostgresMode: a session lost while a key is held: the guard says so at once",
          "[postgres_mode]")
{
    LockTable table(pg_options());
    LockTable other(pg_options());
    KeyGuard held = table.lock("lost");
    REQUIRE(held.still_held());
    Connection c = admin();
    terminate(c.get());
    // No round trip: the FATAL message (or the close) is already in this end's socket.
    CHECK_FALSE(held.still_held());
    // PostgreSQL released the key with the session: another session takes it.
    CHECK(other.try_lock("lost").owns_lock());
    CHECK_FALSE(held.unlock());            // reported, not thrown
    CHECK(table.lock("next").owns_lock()); // reconnected
}

TEST_CASE("PostgresMode: a session lost after the check makes its unlock report the loss",
          "[postgres_mode]")
{
    LockTable table(pg_options());
    KeyGuard held = table.lock("late");
    REQUIRE(held.still_held());
    Connection c = admin();
    terminate(c.get());
    CHECK_FALSE(held.unlock());
}

TEST_CASE("PostgresMode: a session lost between locks reconnects without an error",
          "[postgres_mode]")
{
    LockTable table(pg_options());
    table.lock("idle").unlock();
    Connection c = admin();
    terminate(c.get());
    KeyGuard g;
    CHECK_NOTHROW(g = table.lock("idle"));
    CHECK(g.still_held());
    CHECK(g.unlock());
}

TEST_CASE("PostgresMode: the unlock of a lost key leaves the new session's keys alone",
          "[postgres_mode]")
{
    LockTable table(pg_options());
    LockTable other(pg_options());
    KeyGuard first = table.lock("first");
    Connection c = admin();
    terminate(c.get());
    KeyGuard second = table.lock("second"); // a new session, while `first` is still a guard
    CHECK_FALSE(first.still_held());
    CHECK_FALSE(first.unlock());
    CHECK(second.still_held());
    CHECK_FALSE(other.try_lock("second")); // still held by the new session
    CHECK(second.unlock());
    CHECK(other.try_lock("second"));
}

TEST_CASE("PostgresMode: a lock refused by a full table gives its advisory lock back",
          "[postgres_mode]")
{
    LockTableOptions o = pg_options();
    o.capacity = 1;
    LockTable table(o);
    LockTable other(pg_options());
    KeyGuard a = table.lock("full-a");
    CHECK_THROWS_AS(table.try_lock("full-b"), TableFullError);
    CHECK(other.try_lock("full-b")); // not kept by the session of the refused call
}

TEST_CASE("PostgresMode: server_locks names a holder in another process, and a waiter",
          "[postgres_mode]")
{
    SharedBlock<Shared> sh;
    Child child = holder(sh, "seen");
    REQUIRE(wait_until([&] { return sh->holding.load() != 0; }, 20s));
    LockTable table(pg_options());
    LockTable waiting(pg_options());
    std::atomic<bool> waited_and_got{false};
    std::thread waiter([&] { waited_and_got = waiting.lock_for("seen", 30s).owns_lock(); });
    auto of = [](const std::vector<ServerLock>& locks, bool granted) {
        std::vector<ServerLock> out;
        for (const auto& l : locks)
            if (l.key == "seen" && l.granted == granted) out.push_back(l);
        return out;
    };
    std::vector<ServerLock> locks;
    CHECK(wait_until([&] { return of(locks = table.server_locks(), false).size() == 1; }, 10s));
    sh->release.store(1);
    waiter.join();
    CHECK(waited_and_got);
    CHECK(child.wait() == 0);

    char host[256] = {};
    REQUIRE(::gethostname(host, sizeof host - 1) == 0);
    const auto granted = of(locks, true);
    REQUIRE(granted.size() == 1);
    CHECK(granted[0].pid == child.pid());
    CHECK(granted[0].host == host);
    CHECK(granted[0].backend_pid > 0);
    CHECK(granted[0].client_addr.empty()); // a Unix socket
    CHECK_FALSE(granted[0].since.empty());
    CHECK(granted[0].for_ms >= 0);
    const auto waiters = of(locks, false);
    REQUIRE(waiters.size() == 1);
    CHECK(waiters[0].pid == ::getpid());
    CHECK(waiters[0].backend_pid != granted[0].backend_pid);
    CHECK_FALSE(waiters[0].since.empty());
    CHECK(of(table.server_locks(), true).empty()); // let go by the waiter that got it
}

TEST_CASE("PostgresMode: server_locks gives up on a backend that does not answer",
          "[postgres_mode]")
{
    LockTable table(pg_options());
    CHECK(table.server_locks().empty());
    Connection c = admin();
    const std::string sql = fmt::format("SELECT pid FROM pg_stat_activity WHERE "
                                        "application_name LIKE 'forklock host=% pid={}'",
                                        ::getpid());
    const pid_t backend = std::stoi(query_value(c.get(), sql.c_str()));
    REQUIRE(::kill(backend, SIGSTOP) == 0);
    struct Resume {
        pid_t pid;
        ~Resume() { ::kill(pid, SIGCONT); }
    } resume{backend};
    const auto start = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(table.server_locks(300ms), LockServerError);
    // A bound on "does not hang", far above the 300 ms + grace it takes.
    CHECK(std::chrono::steady_clock::now() - start < 10s);
    ::kill(backend, SIGCONT);
    CHECK_NOTHROW(table.server_locks()); // a new session
}

TEST_CASE("PostgresMode: two keys never share a lock", "[postgres_mode]")
{
    LockTable a(pg_options());
    LockTable b(pg_options());
    std::vector<KeyGuard> held;
    for (int i = 0; i < 100; ++i) held.push_back(a.try_lock("a-" + std::to_string(i)));
    for (int i = 0; i < 100; ++i) held.push_back(b.try_lock("b-" + std::to_string(i)));
    for (const KeyGuard& g : held) CHECK(g.owns_lock());
    CHECK_FALSE(b.try_lock("a-7"));
    Connection c = admin();
    CHECK(query_value(c.get(), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                               "objid >= 1 AND granted") == "200");
    CHECK(query_value(c.get(), "SELECT count(*) = count(DISTINCT id) FROM forklock_keys") == "t");
}

TEST_CASE("PostgresMode: a child never uses the session it inherited", "[postgres_mode]")
{
    LockTable table(pg_options());
    KeyGuard g = table.lock("parents");
    Child child([&] {
        // The inherited table's session is the parent's: reusing it would re-enter the lock.
        return table.try_lock("parents").owns_lock() ? 1 : 0;
    });
    CHECK(child.wait() == 0);
    g.unlock();
    CHECK(table.lock("parents").owns_lock()); // the parent's session survived the child
}

TEST_CASE("PostgresMode: a server that accepts but never answers is given up at connect_timeout",
          "[postgres_mode]")
{
    // A socket where PostgreSQL's would be, listening but never accepting: the kernel completes
    // the connect, libpq sends its startup packet, and nothing ever answers it.
    TempDir dir("forklock-mute");
    UniqueFd mute(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(mute.get() >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = (dir.path() / ".s.PGSQL.5432").string();
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::strcpy(addr.sun_path, path.c_str());
    REQUIRE(::bind(mute.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(mute.get(), 8) == 0);
    const auto start = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(
        LockTable(pg_options(fmt::format("host={} dbname=postgres", dir.path().string()))),
        LockServerError);
    // Not for ever: PgSession::kConnectTimeoutS (5 s), far below this bound.
    CHECK(std::chrono::steady_clock::now() - start < 30s);
}

TEST_CASE("PostgresMode: a server that is down or a missing URL is refused at once",
          "[postgres_mode]")
{
    CHECK_THROWS_AS(LockTable(pg_options("host=/nonexistent-forklock dbname=postgres")),
                    LockServerError);
    CHECK_THROWS_AS(LockTable(pg_options("")), std::invalid_argument);
}

TEST_CASE("PostgresMode: a key's fencing tokens go on across tables sharing the database, and "
          "after every table is gone",
          "[postgres_mode][fence]")
{
    std::uint64_t last = 0;
    {
        LockTable a(pg_options()), b(pg_options()); // two servers on one database
        for (int i = 0; i < 3; ++i) {
            KeyGuard ga = a.lock("fenced");
            CHECK(ga.token() > last);
            last = ga.token();
            ga.unlock();
            KeyGuard gb = b.try_lock("fenced");
            REQUIRE(gb);
            CHECK(gb.token() > last);
            last = gb.token();
        }
    }
    LockTable again(pg_options()); // a restart: the tokens live in forklock_keys
    CHECK(again.lock("fenced").token() > last);
}
