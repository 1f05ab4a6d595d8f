#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

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
