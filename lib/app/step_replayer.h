#pragma once
// StepReplayer: POST /control/step/replay's engine. It runs a step schedule ("A:read B:read
// A:write B:write") on real workers of the server it runs in: it turns step mode on for the key,
// sends two increments to the server's own listener (A, then B once A is parked: each on its
// own connection, so they land on other worker threads than the caller's, and the accept rule of
// StepBoard::yields_accept puts B on another worker than A), moves them as the schedule says
// through the shared StepBoard, runs both to the end, and turns step mode off.
//
// "X:verb" means: step X until it has done `verb` (lock, read, write, unlock, done). A step that
// cannot run because X waits inside lock() is recorded with the reason and skipped: the lesson
// of the safe modes. The same schedule on the same server gives the same outcome every time.
//
// Runs on the calling worker thread, which it blocks (milliseconds normally; at most a few
// seconds per step when the server is short of threads). Needs two free worker threads besides
// the caller's: -w 2 --threads 2, or -w 3. Not thread-safe; one replay per key at a time (the
// key must not be in step mode already).

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "app/step_board.h"

namespace forklock {

struct ReplayMove {
    char name = 'A';              // 'A' or 'B'
    StepPoint until = StepPoint::asked; // step until past this point
    std::string text() const;     // "A:read"
};

// parse_step_schedule: "A:read B:read ..." (also '+', ',' or %20 between steps, %3A for ':');
// throws std::invalid_argument saying what is wrong.
std::vector<ReplayMove> parse_step_schedule(std::string_view text);

struct ReplayAnswer {
    int status = 0; // 0: no answer
    std::string body;
};

struct ReplayBlocked {
    std::string step; // "B:read"
    std::string why;  // "B waits inside lock() for the lock held by A (pid P)"
};

struct ReplayOutcome {
    std::vector<ReplayAnswer> answers; // A's, then B's
    std::vector<ReplayBlocked> blocked;
    std::string recorded; // the schedule the board recorded, every step spelled out
};

// Sends one increment of `key` to this server and returns its answer (blocking).
using SendIncrement = std::function<ReplayAnswer(const std::string& key)>;

// send_to_listener: a SendIncrement over a new TCP connection to the address `listen_fd` is
// bound to (a wildcard address becomes loopback); gives up after `timeout`.
SendIncrement send_to_listener(int listen_fd, std::chrono::milliseconds timeout);

class ReplayError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class StepReplayer final {
public:
    StepReplayer(StepBoard board, std::string key, SendIncrement send);
    // Throws ReplayError when a request does not arrive or settle in time (step mode is off
    // again and both increments answered or gave up by then).
    ReplayOutcome run(const std::vector<ReplayMove>& moves);

private:
    std::optional<ParkedRequest> settled(char name, bool must_exist);
    void advance(const ReplayMove& m, ReplayOutcome& out);
    void finish();
    // The request of the key that holds its lock while `waiter` waits inside lock(), if any.
    std::optional<ParkedRequest> holder(const ParkedRequest& waiter) const;
    std::string holder_name(const ParkedRequest& waiter) const;
    StepBoard board_;
    std::string key_;
    SendIncrement send_;
};

} // namespace forklock
