#pragma once
// current_pid(): getpid() without a system call per lock operation. glibc stopped caching getpid()
// in 2.25; this cache is reset in every child by a pthread_atfork handler.

#include <sys/types.h>

namespace forklock {

pid_t current_pid() noexcept;

} // namespace forklock
