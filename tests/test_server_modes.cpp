// The truth table, on the real binary: which configurations lose concurrent updates.
// Overlap is made certain with hold_ms: each increment holds its read-modify-write window open
// for 150 ms, so any two requests served at once by processes (or threads) that don't exclude
// each other both read the same value.

#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <thread>

#include "harness/http_client.h"
#include "harness/server_process.h"
#include "harness/shm_names.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

constexpr int kRequests = 8;
constexpr int kHoldMs = 150;
constexpr int kSafeHoldMs = 40; // the safe modes serialise: keep their runs short

struct RaceResult {
    int ok = 0;
    std::uint64_t value = 0;
    std::set<pid_t> pids;
    std::set<pid_t> creators; // the master and the workers: who may have made a lock table
};

RaceResult race(const std::vector<std::string>& args, int workers, int hold_ms)
{
    RaceResult result;
    {
        ServerProcess server(args, workers);
        const HttpRequest increment{
            "POST", "/counter/k/increment?hold_ms=" + std::to_string(hold_ms), {}, {}};
        for (const auto& r : concurrent_requests(server.endpoint(), increment, kRequests, 30s)) {
            if (r.status != 200) continue;
            ++result.ok;
            result.pids.insert(r.json()["pid"].get<pid_t>());
        }
        result.value = http_request(server.endpoint(), "GET", "/counter/k")
                           .json()["value"]
                           .get<std::uint64_t>();
        result.creators = server.worker_pids();
        result.creators.insert(server.pid());
    }
    return result;
}

void check_loses_nothing(const std::vector<std::string>& args, int workers)
{
    auto r = race(args, workers, kSafeHoldMs);
    CHECK(r.ok == kRequests);
    CHECK(r.value == static_cast<std::uint64_t>(kRequests));
    CHECK(semaphore_names_of(r.creators) == 0);
}

void check_loses_updates(const std::vector<std::string>& args, int workers)
{
    auto r = race(args, workers, kHoldMs);
    INFO("pids that answered: " << r.pids.size());
    CHECK(r.ok == kRequests);
    CHECK(r.value < static_cast<std::uint64_t>(kRequests));
    CHECK(semaphore_names_of(r.creators) == 0);
}

} // namespace

TEST_CASE("Server: process-shared modes with --preload lose nothing across workers",
          "[server][modes]")
{
    check_loses_nothing({"-w", "4", "--preload", "--lock-mode", "mutex"}, 4);
    check_loses_nothing({"-w", "4", "--preload", "--lock-mode", "semaphore"}, 4);
    check_loses_nothing({"-w", "4", "--preload"}, 4);
}

TEST_CASE("Server: flock loses nothing, with or without --preload", "[server][modes]")
{
    check_loses_nothing({"-w", "4", "--lock-mode", "flock"}, 4);
    check_loses_nothing({"-w", "2", "--threads", "2", "--preload", "--lock-mode", "flock"}, 2);
}

TEST_CASE("Server: thread mode with one worker and many threads loses nothing", "[server][modes]")
{
    check_loses_nothing({"-w", "1", "--threads", "4", "--lock-mode", "thread"}, 1);
}

TEST_CASE("Server: thread mode with several workers loses updates, even with --preload",
          "[server][modes]")
{
    check_loses_updates({"-w", "4", "--preload", "--lock-mode", "thread"}, 4);
}

TEST_CASE("Server: none loses updates, even between the threads of one worker", "[server][modes]")
{
    check_loses_updates({"-w", "1", "--threads", "4", "--lock-mode", "none"}, 1);
}

TEST_CASE("Server: process-shared modes without --preload lose updates", "[server][modes]")
{
    check_loses_updates({"-w", "4", "--lock-mode", "mutex"}, 4);
    check_loses_updates({"-w", "4", "--lock-mode", "semaphore"}, 4);
}

TEST_CASE("Server: the configurations that lose updates say so at start, the others don't",
          "[server][modes]")
{
    {
        ServerProcess server({"-w", "2", "--lock-mode", "thread"}, 2);
        CHECK(
            server.log().find(
                "[WARNING] This configuration loses updates: --lock-mode thread with 2 workers") !=
            std::string::npos);
    }
    {
        ServerProcess server({"-w", "2", "--lock-mode", "mutex"}, 2);
        CHECK(server.log().find("without --preload") != std::string::npos);
    }
    {
        ServerProcess server({"-w", "2", "--preload"}, 2);
        CHECK(server.log().find("[WARNING]") == std::string::npos);
    }
}

TEST_CASE("Server: many fast increments from many clients all count with --preload",
          "[server][modes]")
{
    ServerProcess server({"-w", "3", "--threads", "2", "--preload"}, 3);
    std::vector<std::thread> clients;
    std::atomic<int> ok{0};
    for (int c = 0; c < 8; ++c)
        clients.emplace_back([&] {
            for (int i = 0; i < 40; ++i)
                ok +=
                    http_request(server.endpoint(), "POST", "/counter/hot/increment").status == 200;
        });
    for (auto& t : clients) t.join();
    CHECK(ok == 320);
    CHECK(http_request(server.endpoint(), "GET", "/counter/hot").json()["value"] == 320);
}
