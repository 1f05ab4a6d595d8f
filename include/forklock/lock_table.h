#pragma once
// LockTable: the cross-process "lock dictionary". One lock per key, made on first use, in one of
// six modes (lock_mode.h). Each mode is one class in lib/locks/modes/.
//
// Contract per mode (shared across processes / threads, holder death):
//  - none: FAILS EVERYWHERE: lock() never blocks and excludes nobody. For the demonstration only.
//  - thread: FAILS ACROSS PROCESSES. Private memory: fork() copies the table, so two workers both
//    "hold" one key. Correct between the threads of one process.
//  - semaphore: shared across processes and threads if the table is made before fork() and
//    inherited, or named (a process that makes its own unnamed table shares nothing). The lock
//    word holds the owner's pid (nginx's ngx_shmtx); waiters sleep on one named POSIX semaphore
//    per slot, which an unnamed table's creator unlinks at once, so nothing stays in /dev/shm,
//    kill -9 included (a named table's: see below). Holder death: the key stays locked until a
//    supervisor that reaped the pid calls release_owned_by(pid); with recover_dead_owners =
//    false, for ever (as a multiprocessing.Lock under gunicorn).
//  - mutex: shared across processes and threads if made before fork() or named. Robust
//    process-shared pthread mutexes. Holder death: the next locker recovers the key by itself
//    (EOWNERDEAD) and counts it; a supervisor may free it first with release_owned_by(pid).
//  - flock: shared across processes and threads with or without preload: every lock() opens
//    lock_dir/KEY.lock itself and flock()s it. Holder death: the kernel drops the lock. Lock files
//    are removed when their key's slot is reused. Statistics are shared only if made before fork.
//  - postgres: shared across threads, processes and machines connected to one database
//    (options.url): PostgreSQL session-level advisory locks, one exact id per key, one connection
//    per (table, thread) opened after fork (modes/postgres_mode.cpp, primitives/pg_session.h).
//    Holder death: PostgreSQL releases the locks when the session's connection closes. A server
//    that is down or lost makes lock() throw LockServerError. Here alone a held key can be lost
//    under its holder (its session ends: the server restarts, an administrator terminates it):
//    see KeyGuard::still_held(). Here alone locking a key this thread holds does not deadlock
//    (the session counts it twice): as invalid as elsewhere.
//
// Common to all modes:
//  - Not reentrant: locking a key this thread holds deadlocks (flock: blocks for ever).
//  - A KeyGuard belongs to the thread that took it: unlock it there, before the table is
//    destroyed. It must not cross fork(): the child's copy is not a holder (semaphore: its
//    unlock does nothing, the word names the parent; mutex: unlocking a mutex another process
//    holds is undefined; flock: the inherited fd keeps the parent's lock alive while the child
//    lives; thread: it unlocks the child's own copy of the table).
//  - Keys are 1..kMaxKeyLength arbitrary bytes, compared exactly (never merged by hash).
//  - Capacity: at most `capacity` keys held (none and flock: held or waited on) at once; idle keys
//    keep their slot and statistics until the slot is needed. TableFullError can come before
//    `capacity` keys are held: a key may only use its partition's share and the free pool, and
//    its partition can fill first. A full table never merges keys.
//  - A process killed inside the table's own bookkeeping (a partition's index, while a new key
//    is bound: a few hundred ns) leaves that partition locked until the pid is reaped, as a
//    supervisor does at once; the next locker then repairs it. Until then, lock() of that
//    partition's new keys waits (keys bound already do not).
//  - Every member function may be called concurrently from any thread of any process sharing the
//    table. Destroying an anonymous table unmaps this process's view and unlinks nothing (nothing
//    named is left to unlink).
//
// Named tables (options.name, semaphore and mutex modes): the table's memory is the shared memory
// object /dev/shm/forklock-NAME and its semaphores are /dev/shm/sem.forklock-NAME.I, so tables
// made by processes that never inherited each other's memory (workers after fork without
// preload, two servers) are one table. "Inherited or named" is the rule (lock_mode.h).
//  - Who creates: the first opener, under O_CREAT|O_EXCL. It lays the table out holding an
//    exclusive flock on the object, so nobody reads a half-made table; then it holds a shared
//    flock, like every other user, for as long as its table lives. A live table is one whose
//    object some process holds a flock on (a forked child with the inherited fd counts).
//  - Who unlinks: the last user. Its destructor takes the flock exclusively without waiting; if
//    it gets it, nobody else uses the table, and it unlinks the semaphores and the object. A
//    clean exit of every user leaves nothing in /dev/shm. A process that did not open the table
//    (a child that inherited it) unlinks nothing.
//  - Stale names (every user killed -9, or a creator killed half way): an opener that finds the
//    object but gets the exclusive flock without waiting knows no live process uses it. The old
//    table is never trusted (only its header is read, to tell a creator still alive between its
//    exclusive and its shared flock, which flock(2) does not convert atomically): its names are
//    removed and a fresh table is made (origin() says rebuilt). Its holders are dead, so no lock
//    is lost. (A creator that exec()s closes its fd, so its live pid makes an opener wait and
//    fail with LockNameError instead: exec-ing users are not supported.)
//  - A live table: joined (origin() joined) only if options.share and its header matches this
//    table's layout version, mode and capacity, and was made in this process's pid namespace
//    (lock words hold pids); otherwise LockNameError, and nothing is changed.
//    A header still being written by its creator is waited for.
//  - Holder death works as in the mode's anonymous table; release_owned_by(pid) may be called by
//    any user that knows pid is dead (it is no longer only the creator's).
//  - flock mode ignores the name (the kernel already shares lock files by path); none and thread
//    refuse one (std::invalid_argument): a private table cannot be found by name.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <forklock/lock_errors.h>
#include <forklock/lock_mode.h>
#include <forklock/lock_stats.h>
#include "os/unique_fd.h"

namespace forklock {

struct LockTableOptions {
    LockMode mode = kProcessMode;
    std::size_t capacity = 1024;     // 1..kMaxCapacity (semaphore: ..kMaxSemaphoreCapacity)
    bool recover_dead_owners = true; // semaphore: false = release_owned_by() leaves keys locked
    std::filesystem::path lock_dir;  // flock: directory for KEY.lock files (must exist)
    std::string name;                // semaphore, mutex: "" = anonymous; else see "Named tables"
    bool share = false;              // named: join a table live processes already use
    std::string url;                 // postgres: a libpq connection string or URI (required)
};

// How this process came by its table.
enum class TableOrigin {
    anonymous, // unnamed: made here, shared only by inheritance
    created,   // named: the name was free
    rebuilt,   // named: a stale table under the name was removed and made anew
    joined,    // named: a live table, shared (options.share)
};

class LockTable;
struct Slot;
template <typename Mode>
class TableImpl;

// KeyGuard: a held key, or an empty guard (try_lock, lock_for that gave up). Move-only; unlocks in
// its destructor. See "Common to all modes" above for who may unlock it.
class [[nodiscard]] KeyGuard {
public:
    KeyGuard() = default;
    KeyGuard(KeyGuard&& other) noexcept;
    KeyGuard& operator=(KeyGuard&& other) noexcept;
    KeyGuard(const KeyGuard&) = delete;
    KeyGuard& operator=(const KeyGuard&) = delete;
    ~KeyGuard();

    // unlock: lets the key go (nothing for an empty guard). Returns false when the key had been
    // lost before it (postgres mode: the session that took it ended, and the server released the
    // key with it), true otherwise. The destructor's unlock logs a loss it finds.
    bool unlock() noexcept;
    bool owns_lock() const noexcept { return table_ != nullptr; }
    explicit operator bool() const noexcept { return owns_lock(); }

    // still_held: whether this guard still holds its key, for a holder about to write under it.
    // False for an empty guard. Only postgres mode can lose a held key: it looks at the session's
    // socket without a round trip (a poll() that does not wait, and a read of whatever is there:
    // a terminated backend sends a FATAL message and closes) and, if the session is gone, closes
    // it, so the next lock() reconnects; call it on the thread that took the guard. Every other
    // mode answers true from a member of the guard, without a call.
    // The window that remains: a loss after this check, or one not visible here yet (a backend
    // told to end that has not sent its FATAL yet, a vanished host, a network partition), is not
    // seen before the write, and the next holder may be inside while it happens; unlock() then
    // returns false, so the writer knows afterwards and can refuse to acknowledge. Closing the
    // window needs a fencing token (a number that grows with each grant, sent with the write and
    // checked by the storage, which refuses a write older than the newest it has seen): the check
    // has to be atomic with the write, inside the storage. A counter file written with pwrite()
    // cannot refuse anything; checking a token stored in the file first is again a check, then a
    // write.
    bool still_held() const noexcept;

    // How long lock() waited (0 for an uncontended acquisition).
    std::chrono::nanoseconds waited() const noexcept { return waited_; }
    // The pid of a dead holder this acquisition recovered the key from, or 0.
    pid_t recovered_from() const noexcept { return recovered_from_; }

private:
    friend class LockTable;
    template <typename Mode>
    friend class TableImpl;
    KeyGuard(LockTable* table, Slot* slot, UniqueFd fd, std::uint64_t lease,
             std::chrono::nanoseconds waited, pid_t recovered_from) noexcept
        : table_(table), slot_(slot), fd_(std::move(fd)), lease_(lease), waited_(waited),
          recovered_from_(recovered_from)
    {
    }
    LockTable* table_ = nullptr;
    Slot* slot_ = nullptr;
    UniqueFd fd_;            // flock mode: the lock file this guard opened and holds
    std::uint64_t lease_{0}; // postgres mode: the session that took the key (never 0); else 0
    std::chrono::nanoseconds waited_{0};
    pid_t recovered_from_ = 0;
};

class LockTable {
public:
    static constexpr std::size_t kMaxKeyLength = 128;
    static constexpr std::size_t kMaxCapacity = 1 << 20;
    // Named semaphores map a page each; past this vm.max_map_count gets near.
    static constexpr std::size_t kMaxSemaphoreCapacity = 16384;

    // Makes the table in this process: shared memory for semaphore, mutex and flock, private
    // memory for none and thread; named (options.name) as above. Throws std::invalid_argument for
    // bad options, LockNameError for a live named table it may not join, std::system_error (the
    // call, its arguments, errno) when the OS refuses memory or semaphores.
    explicit LockTable(const LockTableOptions& options);
    ~LockTable();
    LockTable(const LockTable&) = delete;
    LockTable& operator=(const LockTable&) = delete;

    LockMode mode() const noexcept;
    const LockTableOptions& options() const noexcept;
    TableOrigin origin() const noexcept;

    // Names: 1..kMaxNameLength of A-Z a-z 0-9 _ - (no '.' or '/': the name is part of file names
    // in /dev/shm). name_problem: why `name` is not one, or "" if it is.
    static constexpr std::size_t kMaxNameLength = 64;
    static std::string name_problem(std::string_view name);

    // lock: blocks until the key is held. Throws InvalidKeyError, TableFullError.
    KeyGuard lock(std::string_view key);
    // try_lock: an empty guard if someone else holds the key. Contention is not an error.
    KeyGuard try_lock(std::string_view key);
    // lock_for: an empty guard if the key was not held within `timeout`; kNoTimeout waits as long
    // as lock().
    static constexpr std::chrono::nanoseconds kNoTimeout = std::chrono::nanoseconds::max();
    KeyGuard lock_for(std::string_view key, std::chrono::nanoseconds timeout);

    // release_owned_by: for a supervisor that has reaped `pid`. Frees every key the dead process
    // held (semaphore: unless recover_dead_owners is false; mutex: makes the mutex consistent;
    // flock: the kernel already dropped the lock, this clears the bookkeeping), counts one
    // recovery per key, and forgets what the dead process waited on. Returns how many keys were
    // freed. Invalid for a live pid: it would steal that process's locks. none, thread: 0.
    std::size_t release_owned_by(pid_t pid);

    // owner: the pid holding `key` (a dead one until recovered), or 0 if it is free, has no slot,
    // or is not a valid key. Binds no slot and takes one partition lock; a snapshot.
    pid_t owner(std::string_view key) const;

    TableStats stats() const;
    // Bound keys, most acquired first. `limit` 0 means all.
    std::vector<KeyStats> key_stats(std::size_t limit = 0) const;

    // server_locks: postgres mode: the advisory locks of this table's key space as the server
    // sees them (pg_locks joined with pg_stat_activity and forklock_keys): who holds or waits
    // for which key, from any process or host. Asked on the calling thread's session, with a
    // statement_timeout and a client-side deadline of `timeout`, so call it while this thread
    // holds no key of the table: a session that does not answer in time is closed, and a key it
    // held is lost (its guard says so). Throws LockServerError when the server is down, refuses
    // or does not answer in time. Other modes: empty, no lock server to ask.
    std::vector<ServerLock>
    server_locks(std::chrono::milliseconds timeout = std::chrono::seconds(2)) const;

    struct Impl;

private:
    friend class KeyGuard;
    bool unlock(KeyGuard& guard) noexcept;
    bool still_held(const KeyGuard& guard) const noexcept;
    std::unique_ptr<Impl> impl_;
};

} // namespace forklock
