#pragma once
// LockTableOptions: what a lock table is made with, and the limits those options must keep.
// Plain values, read once by LockTable's constructor (lock_table.h).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include <forklock/lock_mode.h>

namespace forklock {

// Keys are 1..kMaxKeyLength bytes; a table holds 1..kMaxCapacity keys at once.
inline constexpr std::size_t kMaxKeyLength = 128;
inline constexpr std::size_t kMaxCapacity = 1 << 20;
// Named semaphores map a page each; past this vm.max_map_count gets near.
inline constexpr std::size_t kMaxSemaphoreCapacity = 16384;
// Table names: 1..kMaxNameLength of A-Z a-z 0-9 _ - (part of file names in /dev/shm).
inline constexpr std::size_t kMaxNameLength = 64;

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

struct LockTableOptions {
    LockMode mode = kProcessMode;
    std::size_t capacity = 1024;     // 1..kMaxCapacity (semaphore: ..kMaxSemaphoreCapacity)
    bool recover_dead_owners = true; // semaphore: false = release_owned_by() leaves keys locked
    std::filesystem::path lock_dir;  // flock: directory for KEY.lock files (must exist)
    std::string name;                // semaphore, mutex: "" = anonymous; else a named table
    bool share = false;              // named: join a table live processes already use
    std::string url;                 // postgres: a libpq connection string or URI (required)
    std::int64_t lease_ms = 0;       // > 0: a held key's lease in ms, where facts(mode).leases
};

// How this process came by its table.
enum class TableOrigin {
    anonymous, // unnamed: made here, shared only by inheritance
    created,   // named: the name was free
    rebuilt,   // named: a stale table under the name was removed and made anew
    joined,    // named: a live table, shared (options.share)
};

} // namespace forklock
