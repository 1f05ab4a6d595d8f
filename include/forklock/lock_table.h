#pragma once
// LockTable: the cross-process "lock dictionary". One lock per key, made on first use, in one of
// six modes (lock_mode.h). Each mode states its own contract (shared across processes? threads?
// holder death?) in lib/locks/modes/<name>_mode.h; docs/library.md links them. What follows holds
// for every mode.
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
//  - Fencing tokens (KeyGuard::token()): every grant of a key, in semaphore, mutex, flock and
//    postgres mode, has a greater token than the grant before it, however the key's slot was
//    reused and whichever process or table (sharing the lock service) granted it; none and
//    thread: 0. Leases (options.lease_ms): semaphore mode only; a key held past its lease can be
//    taken by a waiter, and the old guard's still_held() and unlock() then say false.
//  - Every member function may be called concurrently from any thread of any process sharing the
//    table. Destroying an anonymous table unmaps this process's view and unlinks nothing (nothing
//    named is left to unlink).
//
// Named tables (options.name): lock_options.h.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <forklock/export.h>
#include <forklock/lock_errors.h>
#include <forklock/lock_mode.h>
#include <forklock/lock_options.h>
#include <forklock/lock_stats.h>

namespace forklock {

class KeyGuard;

// LockTable: see above. Not copyable; destroying it ends this process's use of the table.
class FORKLOCK_API LockTable {
public:
    static constexpr std::size_t kMaxKeyLength = forklock::kMaxKeyLength;
    static constexpr std::size_t kMaxCapacity = forklock::kMaxCapacity;
    static constexpr std::size_t kMaxSemaphoreCapacity = forklock::kMaxSemaphoreCapacity;
    static constexpr std::size_t kMaxNameLength = forklock::kMaxNameLength;

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

    // name_problem: why `name` is not a table name (lock_options.h), or "" if it is.
    static std::string name_problem(std::string_view name);
    // url_problem: why `url` is not a lock server URL for `mode`, or "" if it is, or if only
    // connecting can tell (postgres: libpq reads it then). redis: redis://HOST[:PORT][/DB],
    // unix:///PATH[?db=N] or /PATH.
    static std::string url_problem(LockMode mode, std::string_view url);

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

    // raise_token_floor: keys bound from now on get fencing tokens above `floor` (a restart's seed:
    // a new table cannot know the tokens the last one issued). Call it before the first lock();
    // keys bound already go on with their own. A floor never goes down (the higher one stays).
    void raise_token_floor(std::uint64_t floor) noexcept;

    TableStats stats() const;
    // Bound keys, most acquired first. `limit` 0 means all.
    std::vector<KeyStats> key_stats(std::size_t limit = 0) const;

    // server_locks: postgres mode: the advisory locks of this table's key space as the server
    // sees them (pg_locks joined with pg_stat_activity and forklock_keys): who holds or waits
    // for which key, from any process or host. Asked on the calling thread's session, with a
    // statement_timeout and a client-side deadline of `timeout`, so call it while this thread
    // holds no key of the table: a session that does not answer in time is closed, and a key it
    // held is lost (its guard says so). Throws LockServerError when the server is down, refuses
    // or does not answer in time. redis mode: the held keys, SCANned, with their lease left
    // (ttl_ms) and fencing counter (token); each reply bounded by 2 s. Other modes: empty.
    std::vector<ServerLock>
    server_locks(std::chrono::milliseconds timeout = std::chrono::seconds(2)) const;

    struct Impl; // the table itself, internal

private:
    std::unique_ptr<Impl> impl_;
};

// KeyGuard: a held key, or an empty guard (try_lock, lock_for that gave up). Move-only; unlocks in
// its destructor. See "Common to all modes" above for who may unlock it.
class [[nodiscard]] FORKLOCK_API KeyGuard {
public:
    KeyGuard() = default;
    KeyGuard(KeyGuard&& other) noexcept;
    KeyGuard& operator=(KeyGuard&& other) noexcept;
    KeyGuard(const KeyGuard&) = delete;
    KeyGuard& operator=(const KeyGuard&) = delete;
    ~KeyGuard();

    // unlock: lets the key go (nothing for an empty guard). Returns false when the key had been
    // lost before it (postgres mode: the session that took it ended, and the server released the
    // key with it; a mode with a lease (redis, or semaphore with options.lease_ms): another caller
    // took the key after the lease, and this unlock touched nothing of it), true otherwise. The
    // destructor's unlock logs a loss it finds.
    bool unlock() noexcept;
    bool owns_lock() const noexcept { return table_ != nullptr; }
    explicit operator bool() const noexcept { return owns_lock(); }

    // still_held: whether this guard still holds its key, for a holder about to write under it.
    // False for an empty guard. With a lease (options.lease_ms, semaphore mode), false once the
    // key was taken over after its deadline: one load of the slot's grant word. Redis mode asks
    // Redis (one GET: is the key's value still this grant's, or did its lease expire?). Postgres
    // mode can lose a held key too: it looks at the session's socket without a round trip (a
    // poll() that does not wait, and a read of whatever is there: a terminated backend sends a
    // FATAL message and closes) and, if the session is gone, closes it, so the next lock()
    // reconnects; call it on the thread that took the guard. Every other mode without a lease
    // answers true from a member of the guard, without a call.
    // The window that remains: a loss after this check, or one not visible here yet (a backend
    // told to end that has not sent its FATAL yet, a vanished host, a network partition), is not
    // seen before the write, and the next holder may be inside while it happens; unlock() then
    // returns false, so the writer knows afterwards and can refuse to acknowledge. Closing the
    // window needs token() below, sent with the write and checked by the storage, which refuses a
    // write older than the newest it has seen: the check has to be atomic with the write, inside
    // the storage (the server's --fencing store: docs/server.md), not a check before it.
    bool still_held() const noexcept;

    // token: this grant's fencing token, 0 for an empty guard and in none and thread modes. For
    // one key, a later grant always has a greater token than an earlier one: across eviction of
    // its slot, every process sharing the lock service (the inherited or named table, the lock
    // directory, the database) and, given a raise_token_floor() above every token the last run
    // issued, a restart. How each mode keeps that: docs/modes.md ("Fencing tokens").
    // Send it with a write, and let the storage refuse a token lower than the highest it has
    // seen for the key: that closes the window still_held() leaves open.
    std::uint64_t token() const noexcept { return token_; }

    // How long lock() waited (0 for an uncontended acquisition).
    std::chrono::nanoseconds waited() const noexcept { return waited_; }
    // The pid of a dead holder this acquisition recovered the key from, or 0.
    pid_t recovered_from() const noexcept { return recovered_from_; }

private:
    friend struct LockTable::Impl; // the one maker of held guards
    KeyGuard(LockTable::Impl* table, std::uint32_t slot, std::uint64_t handle, std::uint64_t token,
             bool losable, std::chrono::nanoseconds waited, pid_t recovered_from) noexcept
        : table_(table), slot_(slot), losable_(losable), handle_(handle), token_(token),
          waited_(waited), recovered_from_(recovered_from)
    {
    }
    // What the table that made this guard needs to let the key go; meaningful to it alone.
    LockTable::Impl* table_ = nullptr;
    std::uint32_t slot_ = 0;
    bool losable_ = false;     // the key can be lost under its holder: still_held() asks the table
    std::uint64_t handle_ = 0; // what the mode keeps for the held key besides its slot, or 0
    std::uint64_t token_ = 0;  // the grant's fencing token
    std::chrono::nanoseconds waited_{0};
    pid_t recovered_from_ = 0;
};

} // namespace forklock
