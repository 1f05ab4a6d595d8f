// The truth table, on the real binary: which configurations lose concurrent updates.
// Overlap is made certain with hold_ms: each increment holds its read-modify-write window open
// for 150 ms, so any two requests served at once by processes (or threads) that don't exclude
// each other both read the same value.

#include <catch2/catch.hpp>

#include <set>

#include "server_process.h"

using namespace test;

namespace {

constexpr int kRequests = 8;
constexpr int kHoldMs = 150;
constexpr int kSafeHoldMs = 40; // the safe modes serialise: keep their runs short

struct RaceResult {
    int ok = 0;
    std::uint64_t value = 0;
    std::set<int> pids;
};

RaceResult race(const std::vector<std::string>& args, int workers, const std::string& tag, int hold_ms)
{
    auto dir = temp_dir(tag);
    RaceResult result;
    {
        ServerProcess server(args, dir, workers);
        for (const auto& r : concurrent_increments(server.port, "k", kRequests, hold_ms)) {
            if (r.status != 200) continue;
            ++result.ok;
            result.pids.insert(r.json()["pid"].get<int>());
        }
        result.value = request(server.port, "GET", "/counter/k").json()["value"].get<std::uint64_t>();
    }
    return result;
}

void check_loses_nothing(const std::vector<std::string>& args, int workers, const std::string& tag)
{
    auto r = race(args, workers, tag, kSafeHoldMs);
    CHECK(r.ok == kRequests);
    CHECK(r.value == static_cast<std::uint64_t>(kRequests));
}

void check_loses_updates(const std::vector<std::string>& args, int workers, const std::string& tag)
{
    auto r = race(args, workers, tag, kHoldMs);
    INFO("pids that answered: " << r.pids.size());
    CHECK(r.ok == kRequests);
    CHECK(r.value < static_cast<std::uint64_t>(kRequests));
}

} // namespace

TEST_CASE("Server: process-shared modes with --preload lose nothing across workers", "[server][modes]")
{
    check_loses_nothing({"-w", "4", "--preload", "--lock-mode", "mutex"}, 4, "mutex");
    check_loses_nothing({"-w", "4", "--preload", "--lock-mode", "semaphore"}, 4, "semaphore");
    check_loses_nothing({"-w", "4", "--preload"}, 4, "process");
}

TEST_CASE("Server: flock loses nothing, with or without --preload", "[server][modes]")
{
    check_loses_nothing({"-w", "4", "--lock-mode", "flock"}, 4, "flock");
    check_loses_nothing({"-w", "2", "--threads", "2", "--preload", "--lock-mode", "flock"}, 2, "flock-pre");
}

TEST_CASE("Server: thread mode with one worker and many threads loses nothing", "[server][modes]")
{
    check_loses_nothing({"-w", "1", "--threads", "4", "--lock-mode", "thread"}, 1, "thread-1w");
}

TEST_CASE("Server: thread mode with several workers loses updates, even with --preload", "[server][modes]")
{
    check_loses_updates({"-w", "4", "--preload", "--lock-mode", "thread"}, 4, "thread-4w");
}

TEST_CASE("Server: none loses updates, even between the threads of one worker", "[server][modes]")
{
    check_loses_updates({"-w", "1", "--threads", "4", "--lock-mode", "none"}, 1, "none");
}

TEST_CASE("Server: process-shared modes without --preload lose updates", "[server][modes]")
{
    check_loses_updates({"-w", "4", "--lock-mode", "mutex"}, 4, "mutex-nopre");
    check_loses_updates({"-w", "4", "--lock-mode", "semaphore"}, 4, "semaphore-nopre");
}

TEST_CASE("Server: the configurations that lose updates say so at start, the others don't", "[server][modes]")
{
    auto dir = temp_dir("warn");
    {
        ServerProcess server({"-w", "2", "--lock-mode", "thread"}, dir, 2);
        CHECK(server.log().find("[WARNING] This configuration loses updates: --lock-mode thread with 2 workers") != std::string::npos);
    }
    {
        ServerProcess server({"-w", "2", "--lock-mode", "mutex"}, dir, 2);
        CHECK(server.log().find("without --preload") != std::string::npos);
    }
    {
        ServerProcess server({"-w", "2", "--preload"}, dir, 2);
        CHECK(server.log().find("[WARNING]") == std::string::npos);
    }
}

TEST_CASE("Server: many fast increments from many clients all count with --preload", "[server][modes]")
{
    auto dir = temp_dir("many");
    ServerProcess server({"-w", "3", "--threads", "2", "--preload"}, dir, 3);
    std::vector<std::thread> clients;
    std::atomic<int> ok{0};
    for (int c = 0; c < 8; ++c)
        clients.emplace_back([&] {
            for (int i = 0; i < 40; ++i) ok += request(server.port, "POST", "/counter/hot/increment").status == 200;
        });
    for (auto& t : clients) t.join();
    CHECK(ok == 320);
    CHECK(request(server.port, "GET", "/counter/hot").json()["value"] == 320);
}
