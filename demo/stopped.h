#pragma once
// What the rows that pause a key's holder share (Act 3's paused holder, Act 5's leases): a worker
// stopped with SIGSTOP that always gets SIGCONT, and an increment whose reply arrives on a thread
// of its own (a paused holder answers only after SIGCONT). Waits give up on Ctrl-C (Interrupted).

#include <atomic>
#include <functional>
#include <thread>

#include <sys/types.h>

#include "server_api.h"

namespace forklock::demo {

// A worker stopped with SIGSTOP and continued by resume() or, whatever happens, the destructor:
// a stopped worker would not even handle the TERM that stops its server. Throws
// std::system_error when the signal cannot be sent.
class Stopped final {
public:
    explicit Stopped(pid_t pid);
    ~Stopped() { resume(); }
    Stopped(const Stopped&) = delete;
    Stopped& operator=(const Stopped&) = delete;

    [[nodiscard]] Clock::time_point stopped_at() const noexcept { return stopped_at_; }
    // wait_stopped: true once every thread of the worker is stopped, false after `timeout`.
    bool wait_stopped(Clock::duration timeout) const;
    void resume() noexcept;

private:
    pid_t pid_;
    Clock::time_point stopped_at_;
};

// is_stopped: every thread of `pid` is in state T (kill() returns before they all are).
bool is_stopped(pid_t pid);

// PendingReply: `call` runs on a thread of its own; its reply (status 0: it threw) is read once
// answered(). The thread is joined by the destructor, so `call` must end on its own (an HTTP
// timeout bounds it).
class PendingReply final {
public:
    explicit PendingReply(std::function<IncrementReply()> call);
    PendingReply(const PendingReply&) = delete;
    PendingReply& operator=(const PendingReply&) = delete;

    [[nodiscard]] bool answered() const noexcept { return answered_.load(); }
    // wait: true once the reply came, false at `timeout`.
    bool wait(Clock::duration timeout) const;
    // reply: valid once answered() is true.
    [[nodiscard]] const IncrementReply& reply() const noexcept { return reply_; }

private:
    IncrementReply reply_;
    std::atomic<bool> answered_{false};
    std::jthread thread_; // last: joined before the reply goes
};

} // namespace forklock::demo
