#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "app/scoreboard.h"
#include "harness/child.h"

using namespace forklock;

TEST_CASE("Scoreboard: a child's writes are seen by the parent (MAP_SHARED)", "[scoreboard]")
{
    Scoreboard board(::getpid());
    auto slot = board.claim(2).value();
    harness::Child child([&] {
        board.slot(slot).pid = ::getpid();
        board.slot(slot).requests = 7;
        board.slot(slot).state = static_cast<std::uint32_t>(WorkerState::idle);
        board.totals().restarts = 3;
        return 0;
    });
    REQUIRE(child.wait() == 0);
    auto snap = board.snapshot();
    REQUIRE(snap.size() == 1);
    CHECK(snap[0].pid == child.pid());
    CHECK(snap[0].requests == 7);
    CHECK(snap[0].state == WorkerState::idle);
    CHECK(board.totals().restarts == 3);
}

TEST_CASE("Scoreboard: the oldest thread heartbeat is the worker's", "[scoreboard]")
{
    Scoreboard board(::getpid());
    auto slot = board.claim(3).value();
    board.slot(slot).heartbeat_ns[1] = 5;
    CHECK(board.oldest_heartbeat_ns(slot) == 5);
    board.slot(slot).heartbeat_ns[3] = 1; // beyond the worker's 3 threads: ignored
    CHECK(board.oldest_heartbeat_ns(slot) == 5);
}

TEST_CASE("Scoreboard: slots are claimed until full and reused after release", "[scoreboard]")
{
    Scoreboard board(::getpid());
    std::vector<std::size_t> slots;
    while (auto s = board.claim(1)) slots.push_back(*s);
    CHECK(slots.size() == kMaxWorkers);
    board.release(slots[5]);
    CHECK(board.claim(1) == slots[5]);
}

TEST_CASE("ServerConfig: pack and unpack round-trip every field, and 0 is the default",
          "[scoreboard]")
{
    for (auto mode : {LockMode::none, LockMode::thread, LockMode::semaphore, LockMode::mutex,
                      LockMode::flock}) {
        ServerConfig c{4000000000u, mode, true, static_cast<int>(kMaxWorkers),
                       static_cast<int>(kMaxThreads)};
        CHECK(ServerConfig::unpack(c.pack()) == c);
        c.preload = false;
        c.workers = 1;
        CHECK(ServerConfig::unpack(c.pack()) == c);
        CHECK(c.pack() != 0);
    }
    CHECK(ServerConfig::unpack(0) == ServerConfig{});
}

TEST_CASE("Scoreboard: request_config merges a change into the latest request, one generation up",
          "[scoreboard]")
{
    Scoreboard board(::getpid(), {0, LockMode::thread, false, 4, 2});
    CHECK(board.requested_config() == board.applied_config());
    auto first = board.request_config({LockMode::mutex, std::nullopt, std::nullopt, std::nullopt});
    CHECK(first == ServerConfig{1, LockMode::mutex, false, 4, 2});
    auto second = board.request_config({std::nullopt, true, 3, std::nullopt});
    CHECK(second == ServerConfig{2, LockMode::mutex, true, 3, 2});
    CHECK(board.requested_config() == second);
    CHECK(board.applied_config() == ServerConfig{0, LockMode::thread, false, 4, 2});
}

TEST_CASE("Scoreboard: publish_config keeps a pending request, and is followed when none is",
          "[scoreboard]")
{
    Scoreboard board(::getpid(), {0, LockMode::thread, false, 2, 1});
    board.publish_config({0, LockMode::thread, false, 3, 1}); // a TTIN, nothing pending
    CHECK(board.requested_config() == ServerConfig{0, LockMode::thread, false, 3, 1});
    auto asked = board.request_config({LockMode::flock, std::nullopt, std::nullopt, std::nullopt});
    board.publish_config({0, LockMode::thread, false, 4, 1}); // a TTIN before the HUP
    CHECK(board.requested_config() == asked);
    board.publish_config(asked); // the master applied it
    CHECK(board.applied_config() == asked);
    CHECK(board.requested_config() == asked);
}

TEST_CASE("Scoreboard: the deaths ring keeps the last 32, oldest first, with their keys, across "
          "fork",
          "[scoreboard]")
{
    Scoreboard board(::getpid());
    CHECK(board.deaths().empty());
    harness::Child master([&] {
        for (int i = 1; i <= 40; ++i)
            board.record_death({i,
                                i * 10,
                                i % 2 ? 9 : 0,
                                i % 2 ? 137 : 1,
                                {fmt::format("key{}", i), std::string(200, 'x'), "b"},
                                2});
        return 0;
    });
    REQUIRE(master.wait() == 0);
    auto deaths = board.deaths();
    REQUIRE(deaths.size() == kDeathRing);
    CHECK(deaths.front().pid == 9);
    CHECK(deaths.back().pid == 40);
    CHECK(deaths.back().died_ns == 400);
    CHECK(deaths.back().signal == 0);
    CHECK(deaths.back().status == 1);
    CHECK(deaths.back().released == 2);
    CHECK(deaths.back().held ==
          std::vector<std::string>{"key40", std::string(kDeathKeyLength, 'x'), "b"});
    CHECK(deaths.front().signal == 9);
}

TEST_CASE("Scoreboard: a refused configuration's reason is read for its generation only, across "
          "fork",
          "[scoreboard]")
{
    Scoreboard board(::getpid());
    CHECK(!board.config_refusal(0).has_value()); // nothing refused yet
    const std::string reason(kConfigRefusalLength + 40, 'r');
    harness::Child master([&] {
        board.refuse_config(3, "PostgreSQL is down");
        board.refuse_config(4, reason);
        return 0;
    });
    REQUIRE(master.wait() == 0);
    CHECK(!board.config_refusal(3).has_value()); // the last refusal only
    CHECK(board.config_refusal(4) == reason.substr(0, kConfigRefusalLength));
    CHECK(!board.config_refusal(5).has_value());
}
