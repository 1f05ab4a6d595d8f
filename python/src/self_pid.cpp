#include "self_pid.h"

#include <atomic>
#include <pthread.h>
#include <unistd.h>

namespace forklock::python {
namespace {

std::atomic<pid_t> cached{0};

void forget() noexcept { cached.store(0, std::memory_order_relaxed); }

const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr, forget);
    return true;
}();

} // namespace

pid_t self_pid() noexcept
{
    pid_t pid = cached.load(std::memory_order_relaxed);
    if (pid == 0) {
        (void)registered;
        pid = ::getpid();
        cached.store(pid, std::memory_order_relaxed);
    }
    return pid;
}

} // namespace forklock::python
