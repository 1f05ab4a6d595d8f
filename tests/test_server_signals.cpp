// The master's signals, as gunicorn's: TERM, INT, HUP, TTIN, TTOU, USR1; the pid file; workers
// leaving when the master dies.

#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <thread>

#include "harness/http_client.h"
#include "harness/server_process.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

bool gone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

bool all_gone(const std::set<pid_t>& pids) { return std::all_of(pids.begin(), pids.end(), gone); }

// Waits until some worker is busy serving a request. Counted in requests, not busy workers: the
// /workers request itself may be served by another thread of the worker serving the slow one.
bool some_worker_busy(const ServerProcess& server)
{
    return wait_until([&] {
        int in_flight = 0;
        // A poll that lands behind the slow request on its loop gives up after 1 s, so the next
        // one (on another loop) still sees the slow request in flight.
        auto workers = http_request(server.endpoint(), "GET", "/workers", 1s)
                           .json(); // named: the loop must not outlive it
        if (!workers.is_object()) return false;
        for (const auto& w : workers["workers"]) in_flight += w["in_flight"].get<int>();
        return in_flight >= 2; // the /workers request itself is one
    });
}

HttpResponse increment(const ServerProcess& server, int hold_ms,
                       std::chrono::milliseconds timeout = 10s)
{
    return http_request(server.endpoint(), "POST",
                        "/counter/k/increment?hold_ms=" + std::to_string(hold_ms), timeout);
}

HttpResponse get(const ServerProcess& server, std::string target)
{
    return http_request(server.endpoint(), "GET", std::move(target));
}

// The last "Number of workers: N" the master logged; -1 if none.
int last_number_of_workers(const ServerProcess& server)
{
    constexpr std::string_view marker = "Number of workers: ";
    const std::string log = server.log();
    const auto at = log.rfind(marker);
    return at == std::string::npos ? -1 : std::atoi(log.c_str() + at + marker.size());
}

} // namespace

TEST_CASE("Server: TERM lets a request in flight complete, then everything exits",
          "[server][signals]")
{
    const TempDir dir("term");
    auto pid_file = dir.path() / "forklock.pid";
    ServerProcess server({"-w", "2", "--threads", "2", "-p", pid_file.string()}, 2);
    CHECK(wait_until([&] { return std::filesystem::exists(pid_file); }));
    auto workers = server.worker_pids();
    HttpResponse slow;
    std::jthread client([&] { slow = increment(server, 2000); });
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
    ServerProcess server({"-w", "2"}, 2);
    auto workers = server.worker_pids();
    std::jthread client([&] { (void)increment(server, 30000, 20s); });
    REQUIRE(some_worker_busy(server));
    auto started = std::chrono::steady_clock::now();
    server.signal(SIGINT);
    CHECK(server.wait_exit(5s) == 0);
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    client.join();
    CHECK(all_gone(workers));
}

TEST_CASE("Server: HUP replaces every worker without failing a request in flight",
          "[server][signals]")
{
    ServerProcess server({"-w", "2", "--preload"}, 2);
    auto old = server.worker_pids();
    HttpResponse slow;
    std::jthread client([&] { slow = increment(server, 2000); });
    REQUIRE(some_worker_busy(server));
    server.signal(SIGHUP);
    client.join();
    CHECK(slow.status == 200);
    CHECK(wait_until([&] {
        auto now = server.worker_pids();
        return now.size() == 2 &&
               std::none_of(now.begin(), now.end(), [&](int p) { return old.count(p); });
    }));
    CHECK(wait_until([&] { return all_gone(old); }));
    CHECK(get(server, "/workers").json()["restarts"] == 0);
}

TEST_CASE("Server: TTIN adds a worker, TTOU removes the oldest, never the last",
          "[server][signals]")
{
    ServerProcess server({"-w", "1"}, 1);
    int first = *server.worker_pids().begin();
    server.signal(SIGTTIN);
    CHECK(wait_until([&] { return server.worker_pids().size() == 2; }));
    server.signal(SIGTTIN);
    CHECK(wait_until([&] { return server.worker_pids().size() == 3; }));
    server.signal(SIGTTOU);
    CHECK(wait_until([&] { return server.worker_pids().size() == 2 && gone(first); }));
    server.signal(SIGTTOU);
    REQUIRE(wait_until([&] { return server.worker_pids().size() == 1; }));
    // The refused TTOU: once the master has handled it (its fifth "Number of workers"), the
    // count it logged is still 1 and the last worker still serves.
    server.signal(SIGTTOU);
    REQUIRE(wait_until([&] { return server.count_in_log("Number of workers: ") == 5; }));
    CHECK(last_number_of_workers(server) == 1);
    CHECK(server.worker_pids().size() == 1);
    CHECK(get(server, "/healthz").status == 200);
}

TEST_CASE("Server: USR1 reopens the access log after it was moved", "[server][signals]")
{
    const TempDir dir("usr1");
    auto access = dir.path() / "access.log";
    ServerProcess server({"-w", "2", "--access-logfile", access.string()}, 2);
    REQUIRE(get(server, "/healthz").status == 200);
    REQUIRE(wait_until([&] { return std::filesystem::file_size(access) > 0; }));
    std::filesystem::rename(access, dir.path() / "access.log.1");
    server.signal(SIGUSR1);
    REQUIRE(server.wait_for_log("Handling signal: usr1"));
    CHECK(wait_until([&] {
        (void)get(server, "/healthz?after-rotate");
        return std::filesystem::exists(access) && std::filesystem::file_size(access) > 0;
    }));
    std::ifstream in(access);
    std::string line;
    std::getline(in, line);
    CHECK(line.find("\"GET /healthz?after-rotate HTTP/1.1\" 200") != std::string::npos);
}

TEST_CASE("Server: workers exit by themselves when the master is killed", "[server][signals]")
{
    ServerProcess server({"-w", "2"}, 2);
    auto workers = server.worker_pids();
    server.signal(SIGKILL);
    CHECK(server.wait_exit(5s) == 128 + SIGKILL);
    CHECK(wait_until([&] { return all_gone(workers); }, 5s));
}

TEST_CASE("Server: --max-requests recycles a worker", "[server][signals]")
{
    ServerProcess server({"-w", "1", "--max-requests", "5"}, 1);
    int first = *server.worker_pids().begin();
    for (int i = 0; i < 12; ++i) (void)get(server, "/healthz");
    CHECK(server.wait_for_log("Autorestarting worker after current request."));
    CHECK(wait_until([&] {
        auto p = server.worker_pids();
        return p.size() == 1 && !p.count(first);
    }));
}
