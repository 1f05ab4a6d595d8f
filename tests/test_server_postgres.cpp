// The real server in --lock-mode postgres against a throwaway PostgreSQL (harness/pg_cluster.h):
// workers made without --preload exclude each other through it; a PostgreSQL that is down or a
// bad --lock-url stops the server with code 2 before fork; a session lost while it holds a key
// fails that increment with 503 before it writes, and one lost while idle reconnects; /locks
// shows the holders PostgreSQL knows; /control/config switches to postgres with --lock-url only.

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "harness/child.h"
#include "harness/http_client.h"
#include "harness/pg_cluster.h"
#include "harness/server_checks.h"
#include "harness/server_process.h"
#include "harness/wait.h"
#include <forklock/lock_table.h>
#include "os/memory_region.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

PgCluster& cluster() // one for the binary, made on the main thread
{
    static PgCluster c;
    return c;
}

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;
Connection connect_admin()
{
    const std::string info = cluster().conninfo() + " application_name=forklock-test";
    Connection c(PQconnectdb(info.c_str()), &PQfinish);
    REQUIRE(PQstatus(c.get()) == CONNECTION_OK);
    return c;
}
std::string query_value(PGconn* c, const std::string& sql)
{
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c, sql.c_str()), &PQclear);
    INFO(PQresultErrorMessage(r.get()));
    REQUIRE(PQresultStatus(r.get()) == PGRES_TUPLES_OK);
    REQUIRE(PQntuples(r.get()) == 1);
    return PQgetvalue(r.get(), 0, 0);
}
// The backend holding key 'lost' once its holder has taken its fencing token, the last query of a
// grant (0: not yet), from pg_locks and pg_stat_activity. The lock alone shows up before the
// token: a session ended in between fails the lock(), not the increment that holds the key.
constexpr const char* kHolderOfLost =
    "SELECT coalesce(max(l.pid), 0) FROM pg_locks l JOIN forklock_keys k "
    "ON k.id = (l.classid::bigint << 32) | l.objid::bigint "
    "JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND k.key = 'lost' "
    "AND a.state = 'idle' AND a.query LIKE 'UPDATE forklock_keys SET fence%'";

// A process outside the server holding `key` through a table of its own until it is killed.
class OutsideHolder {
public:
    explicit OutsideHolder(const std::string& key)
        : flag_(sizeof(std::atomic<int>), forklock::MemoryRegion::Sharing::shared),
          child_([this, key, url = cluster().conninfo()] {
              forklock::LockTableOptions o;
              o.mode = forklock::LockMode::postgres;
              o.url = url;
              forklock::LockTable own(o);
              forklock::KeyGuard g = own.lock(key);
              holding().store(1);
              for (;;) ::pause();
              return 0;
          })
    {
        REQUIRE(wait_until([&] { return holding().load() != 0; }, 20s));
    }
    pid_t pid() const { return child_.pid(); }
    void kill() { child_.kill(); }

private:
    std::atomic<int>& holding() { return *static_cast<std::atomic<int>*>(flag_.data()); }
    forklock::MemoryRegion flag_;
    Child child_;
};

// The /locks holders of `key` in `state` ("granted" or "waiting").
std::vector<nlohmann::json> holders(const ServerProcess& server, const std::string& key,
                                    const std::string& state)
{
    const auto r = http_request(server.endpoint(), "GET", "/locks");
    INFO(r.body);
    REQUIRE(r.status == 200);
    const nlohmann::json body = r.json(); // kept: the loop's range is a reference into it
    std::vector<nlohmann::json> out;
    for (const auto& h : body["holders"])
        if (h["key"] == key && h["state"] == state) out.push_back(h);
    return out;
}

} // namespace

TEST_CASE("Server: postgres mode loses no concurrent increment, with or without --preload",
          "[server][postgres]")
{
    const bool preload = GENERATE(false, true);
    std::vector<std::string> args = {"-w",          "2",        "--threads",  "2",
                                     "--lock-mode", "postgres", "--lock-url", cluster().conninfo()};
    if (preload) args.push_back("--preload");
    INFO("preload " << preload);
    ServerProcess server(args, 2);
    const HttpRequest increment{"POST", "/counter/pg/increment?hold_ms=20", {}, {}};
    int ok = 0;
    for (const auto& r : concurrent_requests(server.endpoint(), increment, 12, 30s))
        ok += r.status == 200;
    CHECK(ok == 12);
    CHECK(counter_value(server, "pg") == 12);
}

TEST_CASE(
    "Server: a PostgreSQL that is down or a bad --lock-url exits with code 2 before it listens",
    "[server][postgres]")
{
    const std::string down =
        refused({"--lock-mode", "postgres", "--lock-url", "host=/nonexistent-forklock"});
    CHECK(down.find("--lock-url: PostgreSQL connect") != std::string::npos);
    const std::string bad = refused({"--lock-mode", "postgres", "--lock-url", "postgresql://%zz"});
    CHECK(bad.find("--lock-url") != std::string::npos);
    for (const std::string& log : {down, bad}) CHECK(log.find("Listening at") == std::string::npos);
}

TEST_CASE("Server: a session lost while its increment holds the key answers 503 before it writes",
          "[server][postgres]")
{
    ServerProcess server({"--lock-mode", "postgres", "--lock-url", cluster().conninfo()}, 1);
    REQUIRE(http_request(server.endpoint(), "POST", "/counter/lost/increment").status == 200);
    auto holder = std::async(std::launch::async, [&] {
        return http_request(server.endpoint(), "POST", "/counter/lost/increment?hold_ms=1500");
    });
    Connection admin = connect_admin();
    int backend = 0; // the session holding the key, as pg_locks sees it
    REQUIRE(wait_until(
        [&] {
            backend = std::stoi(query_value(admin.get(), kHolderOfLost));
            return backend != 0;
        },
        10s));
    query_value(admin.get(), fmt::format("SELECT pg_terminate_backend({}, 5000)", backend));
    const HttpResponse lost = holder.get();
    INFO(lost.body);
    CHECK(lost.status == 503);
    CHECK(lost.body.find("lost the lock server while holding key 'lost'; this increment is not "
                         "acknowledged") != std::string::npos);
    CHECK(lost.json()["written"] == false);
    CHECK(http_request(server.endpoint(), "POST", "/counter/lost/increment").status == 200);
    CHECK(counter_value(server, "lost") == 2); // the acknowledged ones, no more, no less
}

TEST_CASE("Server: a session lost between requests reconnects without failing the next one",
          "[server][postgres]")
{
    ServerProcess server({"--lock-mode", "postgres", "--lock-url", cluster().conninfo()}, 1);
    REQUIRE(http_request(server.endpoint(), "POST", "/counter/idle/increment").status == 200);
    Connection admin = connect_admin();
    const std::string terminated = query_value(
        admin.get(), fmt::format("SELECT count(pg_terminate_backend(pid, 5000)) FROM "
                                 "pg_stat_activity WHERE application_name LIKE 'forklock host=% "
                                 "pid={}'",
                                 *server.worker_pids().begin()));
    REQUIRE(terminated == "1");
    CHECK(http_request(server.endpoint(), "POST", "/counter/idle/increment").status == 200);
    CHECK(counter_value(server, "idle") == 2);
}

TEST_CASE("Server: /locks in postgres mode names a holder in another process, and a waiter",
          "[server][postgres]")
{
    ServerProcess server(
        {"--threads", "2", "--lock-mode", "postgres", "--lock-url", cluster().conninfo()}, 1);
    OutsideHolder outside("shown");
    auto waiter = std::async(std::launch::async, [&] {
        return http_request(server.endpoint(), "POST", "/counter/shown/increment?timeout_ms=20000",
                            30s);
    });
    // Until the waiter blocks, a /locks connection can be accepted by the very thread that is
    // about to block with it (one wake-up takes both from the backlog), and then waits with it:
    // such a read gives up after 3 s and is asked again on a new connection.
    std::vector<nlohmann::json> waiting;
    CHECK(wait_until(
        [&] {
            const auto r = http_request(server.endpoint(), "GET", "/locks", 3s);
            if (r.status != 200) return false;
            const nlohmann::json body = r.json(); // kept: the loop's range is a reference into it
            for (const auto& h : body["holders"])
                if (h["key"] == "shown" && h["state"] == "waiting") waiting.push_back(h);
            return !waiting.empty();
        },
        30s));
    const auto granted = holders(server, "shown", "granted");
    REQUIRE(granted.size() == 1);
    char host[256] = {};
    REQUIRE(::gethostname(host, sizeof host - 1) == 0);
    CHECK(granted[0]["pid"] == outside.pid());
    CHECK(granted[0]["host"] == host);
    CHECK(granted[0]["backend_pid"].get<int>() > 0);
    REQUIRE(waiting.size() == 1);
    CHECK(waiting[0]["pid"] == *server.worker_pids().begin());
    outside.kill(); // PostgreSQL lets the waiter in
    CHECK(waiter.get().status == 200);
    CHECK(holders(server, "shown", "granted").empty());
}

TEST_CASE("Server: /locks answers 503 while PostgreSQL is down, and 200 once it is back",
          "[server][postgres]")
{
    PgCluster own; // stopped here: not the binary's
    ServerProcess server({"--lock-mode", "postgres", "--lock-url", own.conninfo()}, 1);
    REQUIRE(http_request(server.endpoint(), "GET", "/locks").status == 200);
    own.stop();
    const auto down = http_request(server.endpoint(), "GET", "/locks", 20s);
    INFO(down.body);
    CHECK(down.status == 503);
    CHECK(down.json()["error"].get<std::string>().find("lock server") != std::string::npos);
    CHECK(down.body.find(own.directory().string()) == std::string::npos); // in the log only
    CHECK(server.count_in_log(own.directory().string()) >= 1);
    own.start();
    CHECK(http_request(server.endpoint(), "GET", "/locks").status == 200);
}

namespace {

// Every worker of `server` runs `mode` in configuration `generation`.
bool all_run(const ServerProcess& server, int generation, const std::string& mode)
{
    const nlohmann::json w = http_request(server.endpoint(), "GET", "/workers").json();
    if (!w.is_object() || w["workers"].empty()) return false;
    for (const auto& one : w["workers"])
        if (one.value("generation", -1) != generation || one.value("mode", "") != mode)
            return false;
    return true;
}

} // namespace

TEST_CASE("Server: /control/config leaves postgres mode and comes back to it with its --lock-url",
          "[server][postgres]")
{
    ServerProcess server({"--lock-mode", "postgres", "--lock-url", cluster().conninfo()}, 1);
    const auto away = server.control("/control/config?mode=mutex");
    INFO(away.body);
    REQUIRE(away.status == 202);
    REQUIRE(wait_until([&] { return all_run(server, 1, "mutex"); }, 15s));
    const auto back = server.control("/control/config?mode=postgres");
    INFO(back.body);
    REQUIRE(back.status == 202);
    REQUIRE(wait_until([&] { return all_run(server, 2, "postgres"); }, 15s));
    const auto r = http_request(server.endpoint(), "POST", "/counter/switched/increment");
    CHECK(r.status == 200);
    CHECK(r.json()["lock_mode"] == "postgres");
    CHECK(http_request(server.endpoint(), "GET", "/locks").json().contains("holders"));
}

TEST_CASE("Server: /control/config refuses postgres mode to a server started without --lock-url",
          "[server][postgres]")
{
    ServerProcess server({"--lock-mode", "mutex"}, 1);
    const auto r = server.control("/control/config?mode=postgres");
    INFO(r.body);
    CHECK(r.status == 403);
    CHECK(r.json()["error"].get<std::string>().find("--lock-url") != std::string::npos);
    CHECK(all_run(server, 0, "mutex")); // nothing was asked of the master
}

namespace {

// The controls' token, given on the command line and sent as the dashboard sends it.
constexpr const char* kToken = "pg-t0ken";

HttpResponse control(const ServerProcess& server, const std::string& target)
{
    return http_request(server.endpoint(),
                        HttpRequest{"POST", target, {{"X-Forklock-Token", kToken}}, {}}, 20s);
}

} // namespace

TEST_CASE("Server: /control/config refuses postgres mode while PostgreSQL is down, and the old "
          "workers keep serving",
          "[server][postgres]")
{
    PgCluster own; // stopped here: not the binary's
    ServerProcess server({"-w", "2", "--lock-mode", "postgres", "--lock-url", own.conninfo(),
                          "--dashboard-token", kToken},
                         2);
    REQUIRE(control(server, "/control/config?mode=mutex").status == 202);
    REQUIRE(wait_until(
        [&] { return all_run(server, 1, "mutex") && server.worker_pids().size() == 2; }, 15s));
    own.stop();
    const auto before = server.worker_pids();
    const auto r = control(server, "/control/config?mode=postgres");
    INFO(r.body);
    CHECK(r.status == 409);
    CHECK(r.json().value("error", "").find("PostgreSQL") != std::string::npos);
    CHECK(r.body.find(own.directory().string()) == std::string::npos);
    CHECK(server.worker_pids() == before);
    CHECK(all_run(server, 1, "mutex")); // the workers of the running generation serve on
    const auto still = http_request(server.endpoint(), "POST", "/counter/kept/increment");
    CHECK(still.status == 200);
    CHECK(still.json()["lock_mode"] == "mutex");
    own.start();
    const auto back = control(server, "/control/config?mode=postgres");
    INFO(back.body);
    CHECK(back.status == 202); // the same switch, once PostgreSQL is back
}

TEST_CASE("Server: a SIGHUP while PostgreSQL is down replaces no worker, and the server serves "
          "on",
          "[server][postgres]")
{
    PgCluster own; // stopped here: not the binary's
    ServerProcess server({"-w", "2", "--lock-mode", "postgres", "--lock-url", own.conninfo()}, 2);
    const auto before = server.worker_pids();
    REQUIRE(before.size() == 2);
    own.stop();
    server.signal(SIGHUP);
    REQUIRE(server.wait_for_log("Reload refused; the running configuration and its workers are "
                                "kept: PostgreSQL",
                                20s));
    CHECK(!server.wait_exit(0ms).has_value()); // before: new workers failed to boot, exit 3
    CHECK(server.worker_pids() == before);
    own.start();
    const auto r = http_request(server.endpoint(), "POST", "/counter/hup/increment", 20s);
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(server.worker_pids() == before);
}
