#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include <libpq-fe.h>

#include "harness/child.h"
#include "harness/pg_cluster.h"
#include "harness/wait.h"

using forklock::harness::Child;
using forklock::harness::PgCluster;
using forklock::harness::wait_until;

namespace {

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

Connection connect(const std::string& conninfo)
{
    Connection conn(PQconnectdb(conninfo.c_str()), &PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK)
        throw std::runtime_error(std::string("connect: ") + PQerrorMessage(conn.get()));
    return conn;
}

// query_value: the first column of the first row of `sql`.
std::string query_value(PGconn* conn, const char* sql)
{
    std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn, sql), &PQclear);
    if (PQresultStatus(res.get()) != PGRES_TUPLES_OK || PQntuples(res.get()) < 1)
        throw std::runtime_error(std::string(sql) + ": " + PQerrorMessage(conn));
    return PQgetvalue(res.get(), 0, 0);
}

// gone: no such process, or a zombie nobody has reaped yet (our pid 1 may not reap orphans).
bool gone(pid_t pid)
{
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pid_field, comm, state;
    if (!(stat >> pid_field >> comm >> state)) return true;
    return state == "Z";
}

std::string proc_uid(pid_t pid)
{
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("Uid:", 0) == 0) return line;
    return {};
}

} // namespace

TEST_CASE("PgCluster: PostgreSQL 15 is installed", "[pg_cluster]")
{
    INFO("the postgres tests need: apt-get install postgresql-15 libpq-dev");
    REQUIRE(PgCluster::available());
}

TEST_CASE("PgCluster: a started cluster answers SELECT 1 on its Unix socket only", "[pg_cluster]")
{
    PgCluster cluster;
    Connection conn = connect(cluster.conninfo());
    CHECK(query_value(conn.get(), "SELECT 1") == "1");
    CHECK(std::string(PQhost(conn.get())) == cluster.directory().string());
    CHECK(query_value(conn.get(), "SHOW listen_addresses").empty());
    CHECK(query_value(conn.get(), "SHOW dynamic_shared_memory_type") == "mmap");
}

TEST_CASE("PgCluster: a cluster stopped and started again keeps its data and its conninfo",
          "[pg_cluster]")
{
    PgCluster cluster;
    {
        Connection conn = connect(cluster.conninfo());
        std::unique_ptr<PGresult, decltype(&PQclear)> made(
            PQexec(conn.get(), "CREATE TABLE kept AS SELECT 42 AS v"), &PQclear);
        REQUIRE(PQresultStatus(made.get()) == PGRES_COMMAND_OK);
    }
    const pid_t first = cluster.postmaster_pid();
    cluster.stop();
    CHECK(cluster.postmaster_pid() == 0);
    CHECK(gone(first));
    CHECK(PQping(cluster.conninfo().c_str()) == PQPING_NO_RESPONSE);
    cluster.stop(); // stopped already: nothing
    cluster.start();
    CHECK(cluster.postmaster_pid() != 0);
    CHECK(cluster.postmaster_pid() != first);
    Connection again = connect(cluster.conninfo());
    CHECK(query_value(again.get(), "SELECT v FROM kept") == "42");
    const pid_t second = cluster.postmaster_pid();
    cluster.start(); // running already: nothing
    CHECK(cluster.postmaster_pid() == second);
}

TEST_CASE("PgCluster: the server never runs as root", "[pg_cluster]")
{
    PgCluster cluster;
    const std::string uid = proc_uid(cluster.postmaster_pid());
    INFO(uid);
    REQUIRE(!uid.empty());
    if (::geteuid() == 0)
        CHECK(uid.find("\t0\t") == std::string::npos);
    else
        CHECK(uid.find("\t" + std::to_string(::geteuid()) + "\t") != std::string::npos);
}

TEST_CASE("PgCluster: the destructor leaves no process and no directory", "[pg_cluster]")
{
    pid_t postmaster = 0;
    pid_t backend = 0;
    std::filesystem::path dir;
    Connection conn(nullptr, &PQfinish);
    {
        PgCluster cluster;
        postmaster = cluster.postmaster_pid();
        dir = cluster.directory();
        conn = connect(cluster.conninfo()); // a session open across the stop
        backend = std::stoi(query_value(conn.get(), "SELECT pg_backend_pid()"));
        REQUIRE(!gone(postmaster));
        REQUIRE(!gone(backend));
    }
    CHECK(::kill(postmaster, 0) == -1);
    CHECK(errno == ESRCH);
    CHECK(gone(backend));
    CHECK(!std::filesystem::exists(dir));
}

TEST_CASE("PgCluster: a test that throws still stops and removes its cluster", "[pg_cluster]")
{
    pid_t postmaster = 0;
    std::filesystem::path dir;
    try {
        PgCluster cluster;
        postmaster = cluster.postmaster_pid();
        dir = cluster.directory();
        throw std::runtime_error("the test failed");
    } catch (const std::runtime_error&) {
    }
    REQUIRE(postmaster > 0);
    CHECK(::kill(postmaster, 0) == -1);
    CHECK(!std::filesystem::exists(dir));
}

TEST_CASE("PgCluster: the server dies with a test process that is killed", "[pg_cluster]")
{
    // The orphaned postmaster is reparented to us rather than to a pid 1 that may not reap it.
    REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    Child owner([&] {
        PgCluster cluster;
        const std::string report =
            std::to_string(cluster.postmaster_pid()) + " " + cluster.directory().string() + "\n";
        if (::write(fds[1], report.data(), report.size()) < 0) return 1;
        ::pause();
        return 0;
    });
    ::close(fds[1]);
    std::string report;
    char buf[512];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) {
        report.append(buf, static_cast<std::size_t>(n));
        if (report.back() == '\n') break;
    }
    ::close(fds[0]);
    REQUIRE(!report.empty());
    const pid_t postmaster = std::stoi(report);
    const std::filesystem::path dir =
        report.substr(report.find(' ') + 1, report.size() - 1 - report.find(' ') - 1);
    REQUIRE(!gone(postmaster));
    owner.kill();
    int status = 0;
    CHECK(wait_until([&] { return ::waitpid(postmaster, &status, WNOHANG) == postmaster; },
                     std::chrono::seconds(20)));
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
    std::filesystem::remove_all(dir); // only a live owner removes it (see pg_cluster.h)
}
