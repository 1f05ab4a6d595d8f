#include "os/current_pid.h"

#include <atomic>
#include <pthread.h>
#include <unistd.h>

namespace forklock {
namespace {

std::atomic<pid_t> cached_pid{0};

void forget_pid() noexcept { cached_pid.store(0, std::memory_order_relaxed); }

const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr, forget_pid);
    return true;
}();

} // namespace

pid_t current_pid() noexcept
{
    pid_t pid = cached_pid.load(std::memory_order_relaxed);
    if (pid == 0) {
        (void)registered;
        pid = ::getpid();
        cached_pid.store(pid, std::memory_order_relaxed);
    }
    return pid;
}

} // namespace forklock
