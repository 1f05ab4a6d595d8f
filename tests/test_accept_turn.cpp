// AcceptTurn: the counters that make the event loops of every worker take turns accepting.
// No sockets: the tests play the loops' accepts and requests on the counters directly.

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "accept_turn.h"
#include "app/scoreboard.h"
#include "harness/child.h"

using namespace forklock;

namespace {

// The counters the scoreboard keeps for every loop of every worker.
struct Counters {
    std::atomic<std::uint64_t> accepts{0};
    std::atomic<std::uint32_t> loops{0};
};

} // namespace

TEST_CASE("AcceptTurn: a loop may accept before its first connection", "[accept_turn]")
{
    Counters c;
    c.loops = 2;
    AcceptTurn a(c.accepts, c.loops);
    CHECK(a.my_turn());
}

TEST_CASE("AcceptTurn: after accepting and serving, a loop waits for another loop's accept",
          "[accept_turn]")
{
    Counters c;
    c.loops = 2;
    AcceptTurn a(c.accepts, c.loops);
    AcceptTurn b(c.accepts, c.loops);
    a.accepted();
    a.served();
    CHECK_FALSE(a.my_turn());
    CHECK(b.my_turn());
    b.accepted();
    CHECK(a.my_turn());
    CHECK_FALSE(b.my_turn());
}

TEST_CASE("AcceptTurn: another loop's accept is not enough until the loop has served a request",
          "[accept_turn]")
{
    Counters c;
    c.loops = 2;
    AcceptTurn a(c.accepts, c.loops);
    AcceptTurn b(c.accepts, c.loops);
    a.accepted();
    b.accepted();
    CHECK_FALSE(a.my_turn());
    a.served();
    CHECK(a.my_turn());
}

TEST_CASE("AcceptTurn: with one loop in all, serving a request is the only wait", "[accept_turn]")
{
    Counters c;
    c.loops = 1;
    AcceptTurn a(c.accepts, c.loops);
    a.accepted();
    CHECK_FALSE(a.my_turn());
    a.served();
    CHECK(a.my_turn());
}

TEST_CASE("AcceptTurn: a skipped turn lets the loop accept at once", "[accept_turn]")
{
    Counters c;
    c.loops = 3;
    AcceptTurn a(c.accepts, c.loops);
    a.accepted();
    REQUIRE_FALSE(a.my_turn());
    a.skip();
    CHECK(a.my_turn());
    a.accepted(); // and the next turn is taken as usual
    a.served();
    CHECK_FALSE(a.my_turn());
}

TEST_CASE("AcceptTurn: in a burst of connections no loop takes two in a row", "[accept_turn]")
{
    Counters c;
    c.loops = 3;
    std::vector<AcceptTurn> turns(3, AcceptTurn(c.accepts, c.loops));
    // Each connection goes to the first loop whose turn it is, which serves its request at once:
    // without turns, loop 0 would take them all.
    std::string order;
    for (int connection = 0; connection < 9; ++connection) {
        for (std::size_t i = 0; i < turns.size(); ++i) {
            if (!turns[i].my_turn()) continue;
            turns[i].accepted();
            turns[i].served();
            order += std::to_string(i);
            break;
        }
    }
    INFO("the loops that accepted, in order: " << order);
    REQUIRE(order.size() == 9);
    for (std::size_t i = 1; i < order.size(); ++i) CHECK(order[i] != order[i - 1]);
    CHECK(c.accepts == 9);
}

TEST_CASE("AcceptTurn: an accept in another process gives this process its turn", "[accept_turn]")
{
    Scoreboard board(::getpid());
    REQUIRE(board.claim(1));
    REQUIRE(board.claim(1));
    REQUIRE(board.totals().loops == 2);
    AcceptTurn mine(board.totals().accepts, board.totals().loops);
    mine.accepted();
    mine.served();
    REQUIRE_FALSE(mine.my_turn());
    forklock::harness::Child child([&] {
        AcceptTurn theirs(board.totals().accepts, board.totals().loops);
        return theirs.my_turn() ? (theirs.accepted(), 0) : 1;
    });
    REQUIRE(child.wait() == 0);
    CHECK(mine.my_turn());
}

TEST_CASE("AcceptTurn: a burst suspends the turns until fewer than one per loop wait",
          "[accept_turn]")
{
    Counters c;
    c.loops = 2;
    AcceptTurn a(c.accepts, c.loops);
    a.accepted();
    REQUIRE_FALSE(a.my_turn());
    CHECK(a.share(2 * AcceptTurn::kDeepPerLoop - 1) == 0); // a small burst: turns spread it
    CHECK(a.share(2000) == AcceptTurn::kMaxBatch);         // a burst starts
    CHECK(a.share(7) == 4);                                // its tail: this loop's half
    CHECK(a.share(2) == 1);
    CHECK(a.share(1) == 0); // over
    CHECK(a.share(7) == 0); // and a small backlog afterwards keeps the turns
    c.loops = 1;
    CHECK(a.share(AcceptTurn::kDeepPerLoop - 1) == 0);
    CHECK(a.share(AcceptTurn::kDeepPerLoop) == AcceptTurn::kDeepPerLoop);
}
