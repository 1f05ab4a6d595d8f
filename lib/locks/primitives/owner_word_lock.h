#pragma once
// OwnerWordLock: nginx's ngx_shmtx, for memory shared across fork().
//
// The lock IS the owner word: it holds 0 when free and the holder's pid when held, and it is set by
// the one compare-and-swap that acquires, so there is never a held lock with no recorded owner.
// Waiters spin briefly, then count themselves in `wait` and sleep on a named POSIX semaphore;
// unlock clears the word and posts once if anyone counted. Waiters also wake every
// kRecheckInterval to re-read the word, so a waiter killed after taking a wake-up cannot strand
// the others.
//
// Shared across processes: yes, when the word and the semaphore are inherited (created before
// fork). Across threads: yes (threads of one process share a pid: the word says "held by this
// process"). Not reentrant. Owner death: the word keeps the dead pid forever, exactly like a
// multiprocessing.Lock, until a supervisor that reaped that pid calls force_unlock(pid).

#include <atomic>
#include <cstdint>
#include <optional>
#include <sys/types.h>

namespace forklock {

class NamedSemaphore;

struct OwnerWord {
    std::atomic<std::int32_t> owner; // 0 or the holder's pid
    std::atomic<std::int32_t> wait;  // sleepers to wake; may dip below 0 for a moment, as in nginx
};
static_assert(std::atomic<std::int32_t>::is_always_lock_free);

[[nodiscard]] bool owner_try_lock(OwnerWord& w, pid_t self) noexcept;

// owner_lock: false if the CLOCK_MONOTONIC deadline (ns) passed first. `blocked` is set to true
// if the call had to wait at all.
bool owner_lock(OwnerWord& w, NamedSemaphore& sem, pid_t self, std::optional<std::int64_t> deadline_ns,
                bool& blocked);

void owner_unlock(OwnerWord& w, NamedSemaphore& sem, pid_t self) noexcept;

// owner_force_unlock: frees the lock only if `dead` holds it; true if it did.
bool owner_force_unlock(OwnerWord& w, NamedSemaphore& sem, pid_t dead) noexcept;

} // namespace forklock
