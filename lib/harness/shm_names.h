#pragma once
// Leak checks for named semaphores: a lock table's names are /dev/shm/sem.forklock.PID.TABLE.N,
// PID the creator's. Counting only the pids a test started keeps a check about this test's
// processes from seeing other tests', or another checkout's, running at the same time.

#include <set>

#include <sys/types.h>

namespace forklock::harness {

// semaphore_names_of counts the sem.forklock.PID.* entries in /dev/shm whose PID is in `pids`.
[[nodiscard]] int semaphore_names_of(const std::set<pid_t>& pids);

// own_semaphore_names: those of this process and of the children it forked through Child.
[[nodiscard]] int own_semaphore_names();

} // namespace forklock::harness
