// The master's signals, as gunicorn's: TERM, INT, HUP, TTIN, TTOU, USR1; the pid file; workers
// leaving when the master dies.

#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>

#include "server_process.h"

using namespace test;

namespace {

bool gone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

bool all_gone(const std::set<int>& pids)
{
    return std::all_of(pids.begin(), pids.end(), gone);
}

// Waits until some worker is busy serving a request. Counted in requests, not busy workers: the
// /workers request itself may be served by another thread of the worker serving the slow one.
bool some_worker_busy(const ServerProcess& server)
{
    return eventually([&] {
        int in_flight = 0;
        auto workers = request(server.port, "GET", "/workers").json(); // named: the loop must not outlive it
        for (const auto& w : workers["workers"]) in_flight += w["in_flight"].get<int>();
        return in_flight >= 2; // the /workers request itself is one
    });
}

} // namespace

TEST_CASE("Server: TERM lets a request in flight complete, then everything exits", "[server][signals]")
{
    auto dir = temp_dir("term");
    auto pid_file = dir / "forklock.pid";
    ServerProcess server({"-w", "2", "--threads", "2", "-p", pid_file.string()}, dir, 2);
    CHECK(eventually([&] { return std::filesystem::exists(pid_file); }));
    auto workers = server.worker_pids();
    HttpResponse slow;
    std::jthread client([&] { slow = request(server.port, "POST", "/counter/k/increment?hold_ms=700"); });
    REQUIRE(some_worker_busy(server));
    server.signal(SIGTERM);
    client.join();
    CHECK(slow.status == 200);
    CHECK(server.wait_exit(10s) == 0);
    CHECK(all_gone(workers));
    CHECK_FALSE(std::filesystem::exists(pid_file));
}

TEST_CASE("Server: INT stops quickly, even with a long request in flight", "[server][signals]")
{
    auto dir = temp_dir("int");
    ServerProcess server({"-w", "2"}, dir, 2);
    auto workers = server.worker_pids();
    std::jthread client([&] { request(server.port, "POST", "/counter/k/increment?hold_ms=30000", 20s); });
    REQUIRE(some_worker_busy(server));
    auto started = std::chrono::steady_clock::now();
    server.signal(SIGINT);
    CHECK(server.wait_exit(5s) == 0);
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    client.join();
    CHECK(all_gone(workers));
}

TEST_CASE("Server: HUP replaces every worker without failing a request in flight", "[server][signals]")
{
    auto dir = temp_dir("hup");
    ServerProcess server({"-w", "2", "--preload"}, dir, 2);
    auto old = server.worker_pids();
    HttpResponse slow;
    std::jthread client([&] { slow = request(server.port, "POST", "/counter/k/increment?hold_ms=500"); });
    REQUIRE(some_worker_busy(server));
    server.signal(SIGHUP);
    client.join();
    CHECK(slow.status == 200);
    CHECK(eventually([&] {
        auto now = server.worker_pids();
        return now.size() == 2 && std::none_of(now.begin(), now.end(), [&](int p) { return old.count(p); });
    }));
    CHECK(eventually([&] { return all_gone(old); }));
    CHECK(request(server.port, "GET", "/workers").json()["restarts"] == 0);
}

TEST_CASE("Server: TTIN adds a worker, TTOU removes the oldest", "[server][signals]")
{
    auto dir = temp_dir("ttin");
    ServerProcess server({"-w", "1"}, dir, 1);
    int first = *server.worker_pids().begin();
    server.signal(SIGTTIN);
    CHECK(eventually([&] { return server.worker_pids().size() == 2; }));
    server.signal(SIGTTIN);
    CHECK(eventually([&] { return server.worker_pids().size() == 3; }));
    server.signal(SIGTTOU);
    CHECK(eventually([&] { return server.worker_pids().size() == 2 && gone(first); }));
    server.signal(SIGTTOU);
    server.signal(SIGTTOU); // never below one
    CHECK(eventually([&] { return server.worker_pids().size() == 1; }));
    CHECK(server.wait_for_log("Number of workers: 1"));
    CHECK(server.worker_pids().size() == 1);
}

TEST_CASE("Server: USR1 reopens the access log after it was moved", "[server][signals]")
{
    auto dir = temp_dir("usr1");
    auto access = dir / "access.log";
    ServerProcess server({"-w", "2", "--access-logfile", access.string()}, dir, 2);
    REQUIRE(request(server.port, "GET", "/healthz").status == 200);
    REQUIRE(eventually([&] { return std::filesystem::file_size(access) > 0; }));
    std::filesystem::rename(access, dir / "access.log.1");
    server.signal(SIGUSR1);
    REQUIRE(server.wait_for_log("Handling signal: usr1"));
    CHECK(eventually([&] {
        request(server.port, "GET", "/healthz?after-rotate");
        return std::filesystem::exists(access) && std::filesystem::file_size(access) > 0;
    }));
    std::ifstream in(access);
    std::string line;
    std::getline(in, line);
    CHECK(line.find("\"GET /healthz?after-rotate HTTP/1.1\" 200") != std::string::npos);
}

TEST_CASE("Server: workers exit by themselves when the master is killed", "[server][signals]")
{
    auto dir = temp_dir("orphan");
    ServerProcess server({"-w", "2"}, dir, 2);
    auto workers = server.worker_pids();
    server.signal(SIGKILL);
    server.wait_exit(5s);
    CHECK(eventually([&] { return all_gone(workers); }, 5s));
}

TEST_CASE("Server: --max-requests recycles a worker", "[server][signals]")
{
    auto dir = temp_dir("maxreq");
    ServerProcess server({"-w", "1", "--max-requests", "5"}, dir, 1);
    int first = *server.worker_pids().begin();
    for (int i = 0; i < 12; ++i) request(server.port, "GET", "/healthz");
    CHECK(server.wait_for_log("Autorestarting worker after current request."));
    CHECK(eventually([&] { auto p = server.worker_pids(); return p.size() == 1 && !p.count(first); }));
}
