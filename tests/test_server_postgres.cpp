// The real server in --lock-mode postgres against a throwaway PostgreSQL (harness/pg_cluster.h):
// workers made without --preload exclude each other through it; a PostgreSQL that is down or a
// bad --lock-url stops the server with code 2 before fork; a lost session is one 503.

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include <libpq-fe.h>

#include "harness/http_client.h"
#include "harness/pg_cluster.h"
#include "harness/server_process.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

PgCluster& cluster() // one for the binary, made on the main thread
{
    static PgCluster c;
    return c;
}

std::uint64_t counter_value(const ServerProcess& server, const std::string& key)
{
    return http_request(server.endpoint(), "GET", "/counter/" + key)
        .json()["value"]
        .get<std::uint64_t>();
}

// refused: a server with these lock flags exits with code 2 before any worker boots; its log.
std::string refused(std::vector<std::string> args)
{
    ServerSpec spec;
    spec.args = std::move(args);
    spec.workers = 0;
    ServerProcess server(spec);
    const auto code = server.wait_exit(20s);
    INFO(server.log_tail());
    CHECK(code == 2);
    CHECK(server.log().find("Booting worker") == std::string::npos);
    return server.log();
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

TEST_CASE("Server: a PostgreSQL that is down or a bad --lock-url exits with code 2 before fork",
          "[server][postgres]")
{
    const std::string down =
        refused({"--lock-mode", "postgres", "--lock-url", "host=/nonexistent-forklock"});
    CHECK(down.find("--lock-url: PostgreSQL connect") != std::string::npos);
    const std::string bad = refused({"--lock-mode", "postgres", "--lock-url", "postgresql://%zz"});
    CHECK(bad.find("--lock-url") != std::string::npos);
}

TEST_CASE("Server: a lost PostgreSQL session fails one request with 503 and the next reconnects",
          "[server][postgres]")
{
    ServerProcess server({"--lock-mode", "postgres", "--lock-url", cluster().conninfo()}, 1);
    REQUIRE(http_request(server.endpoint(), "POST", "/counter/lost/increment").status == 200);
    const std::string admin_info = cluster().conninfo() + " application_name=forklock-test";
    std::unique_ptr<PGconn, decltype(&PQfinish)> admin(PQconnectdb(admin_info.c_str()), &PQfinish);
    REQUIRE(PQstatus(admin.get()) == CONNECTION_OK);
    std::unique_ptr<PGresult, decltype(&PQclear)> killed(
        PQexec(admin.get(), "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                            "WHERE application_name = 'forklock'"),
        &PQclear);
    REQUIRE(PQresultStatus(killed.get()) == PGRES_TUPLES_OK);
    REQUIRE(PQntuples(killed.get()) == 1);
    const auto lost = http_request(server.endpoint(), "POST", "/counter/lost/increment");
    CHECK(lost.status == 503);
    CHECK(lost.body.find("lock server") != std::string::npos);
    CHECK(http_request(server.endpoint(), "POST", "/counter/lost/increment").status == 200);
    CHECK(counter_value(server, "lost") == 2); // the acknowledged ones, no more, no less
}
