#pragma once
// Leak checks for named semaphores and named tables: a lock table's names are
// /dev/shm/sem.forklock.PID.TABLE.N, PID the creator's. Counting only the pids a test started keeps
// a check about this test's processes from seeing other tests', or another checkout's, running at
// the same time.

#include <set>
#include <string>

#include <sys/types.h>

namespace forklock::harness {

// semaphore_names_of counts the sem.forklock.PID.* entries in /dev/shm whose PID is in `pids`.
[[nodiscard]] int semaphore_names_of(const std::set<pid_t>& pids);

// own_semaphore_names: those of this process and of the children it forked through Child.
[[nodiscard]] int own_semaphore_names();

// named_table_entries counts the /dev/shm entries of the table opened by --lock-name `name`: its
// object forklock-NAME and its semaphores sem.forklock-NAME.I.
[[nodiscard]] int named_table_entries(const std::string& name);

} // namespace forklock::harness
