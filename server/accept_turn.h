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
// A deep backlog suspends the turns: when at least one connection per loop is already waiting in
// the kernel's accept queue (a burst), a loop accepts its share of them (backlog / loops, at most
// kMaxBatch) in one wake-up without waiting for its turn, so a small burst (wrk opening 32
// keep-alive connections) is still split between the loops. Turns exist to spread a handful of
// keep-alive connections; in a burst every loop that is awake takes its share anyway, and a turn
// that only a 1 ms timer can skip (idle clients serve nothing) cost 3.9 s to accept 2,000
// connections.

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
    // deep: whether `backlog` connections waiting to be accepted suspend the turns (at least one
    // per loop). backlog comes from accept_backlog() (listener.h).
    [[nodiscard]] bool deep(std::uint32_t backlog) const noexcept;
    // share: how many of `backlog` waiting connections this loop may take in one wake-up without
    // its turn: 0 unless deep(), else backlog / loops rounded up, at most kMaxBatch.
    [[nodiscard]] std::uint32_t share(std::uint32_t backlog) const noexcept;

    // How many connections a loop may accept in one wake-up of a deep backlog before it lets its
    // event loop serve the ones it has (their requests wait while it accepts).
    static constexpr std::uint32_t kMaxBatch = 64;

private:
    std::atomic<std::uint64_t>& accepts_;
    const std::atomic<std::uint32_t>& loops_;
    bool served_since_accept_ = true;
    bool wait_for_another_ = false; // false before the first accept and after a skip()
    std::uint64_t ticket_ = 0; // accepts_ just after our last accept: a higher count is another's
};

} // namespace forklock
