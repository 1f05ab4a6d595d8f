#pragma once
// AcceptTurn: whether one event loop may accept the next connection, so that the loops of every
// worker take turns (see "Accept turns" in http_adapter.h for why). Pure counters, no sockets:
// after accepting, a loop waits until it has served a request and some other loop has accepted
// since. Every loop of every worker shares two counters, in the scoreboard's shared memory:
// `accepts`, connections accepted by any loop, and `loops`, how many loops there are in all
// (with one loop there are no turns).
//
// Shared across processes through those counters; each AcceptTurn belongs to one loop and is
// used by that loop's thread only. The counters are read relaxed: a stale read delays or
// advances one turn, never loses a connection (the caller's timer skips a turn nobody takes).
// A loop that dies leaves nothing to undo: the counts only grow, and Scoreboard::release()
// takes its loops out of `loops`.
//
// A burst suspends the turns: once a loop has seen kDeepPerLoop connections per loop waiting in
// the kernel's accept queue, it accepts its share of what waits (backlog / loops, at most
// kMaxBatch) in each wake-up without waiting for its turn, until fewer than one per loop are
// left: a burst passed on turn by turn would wait for the timer at every turn that falls to an
// idle loop (idle clients serve nothing). A small burst (wrk's 32 keep-alive connections) keeps the turns, so that a
// loop slow to wake on a busy machine still gets its share.

#include <atomic>
#include <cstdint>

namespace forklock {

class AcceptTurn final {
public:
    // Both counters must outlive this object.
    AcceptTurn(std::atomic<std::uint64_t>& accepts,
               const std::atomic<std::uint32_t>& loops) noexcept;

    // accepted: this loop took a connection; its next turn comes after served() and another
    // loop's accepted().
    void accepted() noexcept;
    // served: this loop served a request (of any connection).
    void served() noexcept;
    // skip: the turn went untaken for too long (the other loops are blocked, or a client
    // connected and sent nothing): this loop may accept again at once.
    void skip() noexcept;
    // my_turn: whether this loop may accept now. True before its first accepted().
    [[nodiscard]] bool my_turn() const noexcept;
    // share: how many connections this loop may accept now without its turn, `backlog` being
    // what waits in the accept queue (accept_backlog() in listener.h): 0 outside a burst, else
    // backlog / loops rounded up, at most kMaxBatch. Starts and ends the burst (see above).
    // Call it after each accept. A burst starts only there, and only above kDeepPerLoop per
    // loop: with a lower bar a loop that let itself in again took most of wrk's 32 connections
    // while the other loop was slow to wake.
    [[nodiscard]] std::uint32_t share(std::uint32_t backlog) noexcept;

    // How many connections a loop may accept in one wake-up of a burst before it lets its
    // event loop serve the ones it has (their requests wait while it accepts).
    static constexpr std::uint32_t kMaxBatch = 64;
    // A burst starts at kDeepPerLoop waiting per loop: more than wrk's 32 connections for 2 loops.
    static constexpr std::uint32_t kDeepPerLoop = 32;

private:
    std::atomic<std::uint64_t>& accepts_;
    const std::atomic<std::uint32_t>& loops_;
    bool served_since_accept_ = true;
    bool burst_ = false;
    bool wait_for_another_ = false; // false before the first accept and after a skip()
    std::uint64_t ticket_ = 0; // accepts_ just after our last accept: a higher count is another's
};

} // namespace forklock
