#pragma once
// self_pid: getpid() without a system call (~200 ns here, a third of an uncontended lock from
// Python), cached and forgotten in every fork child (pthread_atfork), so the guards' fork
// checks stay exact. Safe from any thread.

#include <sys/types.h>

namespace forklock::python {

pid_t self_pid() noexcept;

} // namespace forklock::python
