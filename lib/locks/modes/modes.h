#pragma once
// The lock modes, one factory each (lib/locks/modes/<name>_mode.cpp), and make_table_impl(), the
// one place that maps a LockMode to its class. A new mode: its file, its line here and there.

#include <memory>

#include <forklock/lock_table.h>

namespace forklock {

std::unique_ptr<LockTable::Impl> make_none_table(const LockTableOptions& options);
std::unique_ptr<LockTable::Impl> make_thread_table(const LockTableOptions& options);
std::unique_ptr<LockTable::Impl> make_semaphore_table(const LockTableOptions& options);
std::unique_ptr<LockTable::Impl> make_mutex_table(const LockTableOptions& options);
std::unique_ptr<LockTable::Impl> make_flock_table(const LockTableOptions& options);
std::unique_ptr<LockTable::Impl> make_postgres_table(const LockTableOptions& options);

// make_table_impl: the table for options.mode. Throws std::invalid_argument for options the mode
// refuses, std::system_error when the OS refuses memory or semaphores.
std::unique_ptr<LockTable::Impl> make_table_impl(const LockTableOptions& options);

} // namespace forklock
