#pragma once
// LockTable: the cross-process "lock dictionary". One lock per key, made on first use, in one of
// five modes (lock_mode.h).
//
// Contract, per mode:
//  - none: lock() never blocks and excludes nobody. For the demonstration only.
//  - thread: FAILS ACROSS PROCESSES. The table and its std::mutexes live in private memory;
//    fork() copies them, so two workers both "hold" the same key at once. Correct between the
//    threads of one process.
//  - semaphore: shared across processes and threads when the table is created before fork() and
//    inherited (each process that creates its own table shares nothing). The lock word holds the
//    owner's pid, set by the same compare-and-swap that acquires (nginx's ngx_shmtx); waiters
//    sleep on one named POSIX semaphore per slot, made with sem_open(O_CREAT|O_EXCL, 0600) by the
//    creator and unlinked at once, so nothing stays in /dev/shm even after kill -9. Holder death:
//    nothing happens by itself; a supervisor that reaped the pid calls release_owned_by(pid).
//    With recover_dead_owners = false that call does nothing and the key stays locked forever,
//    as a multiprocessing.Lock does under gunicorn.
//  - mutex: shared across processes and threads when created before fork(). Robust
//    PTHREAD_PROCESS_SHARED mutexes (no priority inheritance). Holder death: the next locker gets
//    EOWNERDEAD from the kernel, makes the mutex consistent and counts a recovery; a supervisor
//    may also call release_owned_by(pid) to free it before anyone asks.
//  - flock: shared across processes and threads with or without preload: each lock() opens
//    lock_dir/KEY.lock itself (O_CLOEXEC, a fresh open file description) and flock()s it, so no fd
//    inherited from a master can carry or leak a lock. Holder death: the kernel drops the lock
//    when the dead process's files close. Statistics are shared only if the table was made before
//    fork.
//
// Common to all modes: not reentrant (locking a key you hold deadlocks, or in flock mode blocks
// forever); unlock from the thread that locked. Keys are 1..kMaxKeyLength arbitrary bytes,
// compared exactly: two keys never share a lock because their hashes collide. At most `capacity`
// keys can be held at once (none and flock: held or waited on); idle keys keep their slot (and
// statistics) until the slot is needed. A full table throws TableFullError, never merges keys.
//
// Thread safety: every member function may be called from any thread of any process that shares
// the table, concurrently. The table object must outlive its guards. Destroying the table in the
// process that created it unlinks nothing (names were unlinked at creation) and unmaps memory;
// children that inherited it simply exit.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "locks/lock_errors.h"
#include "locks/lock_mode.h"
#include "locks/lock_stats.h"

namespace forklock {

struct LockTableOptions {
    LockMode mode = kProcessMode;
    std::size_t capacity = 1024;       // 1..kMaxCapacity
    bool recover_dead_owners = true;   // semaphore: false = release_owned_by() leaves keys locked
    std::filesystem::path lock_dir;    // flock: directory for KEY.lock files (must exist)
};

class LockTable;
struct Slot;

// KeyGuard: a held key. Move-only; unlocks in its destructor. Must be released by the thread that
// took it, before the LockTable is destroyed.
class [[nodiscard]] KeyGuard {
public:
    KeyGuard() = default;
    KeyGuard(KeyGuard&& other) noexcept;
    KeyGuard& operator=(KeyGuard&& other) noexcept;
    KeyGuard(const KeyGuard&) = delete;
    KeyGuard& operator=(const KeyGuard&) = delete;
    ~KeyGuard();

    void unlock() noexcept;
    bool owns_lock() const noexcept { return table_ != nullptr; }
    explicit operator bool() const noexcept { return owns_lock(); }

    // How long lock() waited (0 for an uncontended acquisition).
    std::chrono::nanoseconds waited() const noexcept { return waited_; }
    // The pid of a dead holder this acquisition recovered the key from, or 0.
    pid_t recovered_from() const noexcept { return recovered_from_; }

private:
    friend class LockTable;
    KeyGuard(LockTable* table, Slot* slot, int fd, std::chrono::nanoseconds waited, pid_t recovered_from) noexcept
        : table_(table), slot_(slot), fd_(fd), waited_(waited), recovered_from_(recovered_from)
    {
    }
    LockTable* table_ = nullptr;
    Slot* slot_ = nullptr;
    int fd_ = -1; // flock mode: the lock file this guard opened
    std::chrono::nanoseconds waited_{0};
    pid_t recovered_from_ = 0;
};

class LockTable {
public:
    static constexpr std::size_t kMaxKeyLength = 128;
    static constexpr std::size_t kMaxCapacity = 1 << 20;
    // Named semaphores map a page each; past this vm.max_map_count gets near.
    static constexpr std::size_t kMaxSemaphoreCapacity = 16384;

    // Creates the table in this process: shared memory (and semaphores) for semaphore, mutex and
    // flock statistics, private memory for none and thread. Throws std::system_error (with the
    // call, its arguments and errno) or std::invalid_argument for bad options.
    explicit LockTable(const LockTableOptions& options);
    ~LockTable();
    LockTable(const LockTable&) = delete;
    LockTable& operator=(const LockTable&) = delete;

    LockMode mode() const noexcept;
    const LockTableOptions& options() const noexcept;

    // lock: blocks until the key is held. Throws InvalidKeyError, TableFullError.
    KeyGuard lock(std::string_view key);
    // try_lock: an empty guard if someone else holds the key. Contention is not an error.
    KeyGuard try_lock(std::string_view key);
    // lock_for: an empty guard if the key was not acquired within `timeout`; kNoTimeout waits
    // as long as lock(). (A sentinel, not an std::optional, which cost a store-forwarding stall on
    // every lock.)
    static constexpr std::chrono::nanoseconds kNoTimeout = std::chrono::nanoseconds::max();
    KeyGuard lock_for(std::string_view key, std::chrono::nanoseconds timeout);

    // release_owned_by: for a supervisor that has reaped `pid`. Frees every key the dead process
    // held (semaphore: clears the owner word and wakes a waiter unless recover_dead_owners is
    // false; mutex: takes the EOWNERDEAD mutex, makes it consistent, releases it; flock: clears the
    // bookkeeping, the kernel already dropped the lock). Counts one recovery per key with the dead
    // pid, and forgets whatever the dead process was waiting on (its waiters leave the statistics).
    // Returns how many keys were freed. Calling it for a live pid is invalid: it would steal
    // that process's locks.
    std::size_t release_owned_by(pid_t pid);

    TableStats stats() const;
    // Bound keys, most acquired first. `limit` 0 means all.
    std::vector<KeyStats> key_stats(std::size_t limit = 0) const;

    struct Impl;

private:
    friend class KeyGuard;
    void unlock(KeyGuard& guard) noexcept;
    KeyGuard acquire(std::string_view key, std::chrono::nanoseconds timeout);
    std::unique_ptr<Impl> impl_;
};

} // namespace forklock
