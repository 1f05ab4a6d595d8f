#pragma once
// SignalQueue: the master's signals, as gunicorn's arbiter handles them: the handler only writes
// the signal number to a self-pipe (and keeps errno); the run loop reads them one at a time and
// dispatches.
//
// Order and coalescing: every delivery of a signal is one entry, reported in the order the
// handlers ran; the queue merges nothing, but the kernel delivers a signal that arrives again
// while it is still pending only once. A full pipe (64 KiB of entries by default) drops the
// newer ones. Per process, not per thread: the handler may run on any thread, wait() on one.

#include <signal.h>

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>

#include "os/unique_fd.h"

namespace forklock {

// set_handler: sigaction(sig) with SA_RESTART and an empty mask; the second form also passes the
// handler a siginfo_t (SA_SIGINFO), to tell who sent the signal. Throws std::system_error.
void set_handler(int sig, void (*handler)(int));
void set_handler(int sig, void (*handler)(int, siginfo_t*, void*));

// "SIGTERM" for SIGTERM (the number for a signal without a name): what the logs print.
std::string signal_name(int sig);

class SignalQueue final {
public:
    // Installs the handlers (SA_RESTART). Only one queue may exist per process.
    explicit SignalQueue(std::initializer_list<int> signals);
    ~SignalQueue();
    SignalQueue(const SignalQueue&) = delete;
    SignalQueue& operator=(const SignalQueue&) = delete;

    // The next queued signal, waiting up to `timeout` for one; nullopt if none came, or if
    // poll() was interrupted by a signal this queue doesn't handle. Throws std::system_error if
    // poll() fails otherwise.
    std::optional<int> wait(std::chrono::milliseconds timeout);

    // In a forked child: restore default dispositions and drop the pipe, so the child's signals
    // are its own business.
    void detach_in_child() noexcept;

private:
    UniqueFd read_;
    UniqueFd write_;
};

} // namespace forklock
