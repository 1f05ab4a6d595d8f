#pragma once
// PidSpinLock: a lock word holding its holder's pid, for the lock table's own short critical
// sections (a partition's index), in memory that may be shared across fork().
//
// lock() is one compare-and-swap from 0 to the caller's pid; unlock() is one release store of 0,
// no read-modify-write. (A robust pthread mutex adds an atomic exchange on unlock and its
// robust-list bookkeeping on both sides: about a fifth of a table miss, bench_lock_table.)
// Waiters spin, then yield, then nap: meant for sections of a few hundred nanoseconds that
// never block for long.
//
// Shared across processes: yes, in MAP_SHARED memory, by processes of one pid namespace (a pid
// must name the same process to every user: named tables check it). Across threads: yes; threads
// of one process share a pid, which matters only to the death check. Not reentrant: lock() by
// the holder waits forever.
// Owner death: the word keeps the dead pid. A waiter that has waited a while asks kill(pid, 0);
// ESRCH means the holder is dead and reaped, and the one waiter whose compare-and-swap from that
// pid wins gets MutexResult::owner_died: it holds the lock and must repair what the dead holder
// left half done before it unlocks. A holder killed but not yet reaped (a zombie) still answers
// kill(): waiters wait until its parent reaps it (a supervisor reaps at once; see lock_table.h).
// Invalid: unlock() by a process that does not hold the lock.

#include <atomic>
#include <cstdint>
#include <sys/types.h>

#include "locks/primitives/pthread_mutex.h" // MutexResult

namespace forklock {

struct PidSpinLock {
    std::atomic<std::int32_t> owner; // 0 or the holder's pid

    MutexResult lock(pid_t self) noexcept
    {
        std::int32_t expected = 0;
        if (owner.compare_exchange_strong(expected, self, std::memory_order_acquire,
                                          std::memory_order_relaxed))
            return MutexResult::acquired;
        return lock_slowly(self);
    }
    void unlock() noexcept { owner.store(0, std::memory_order_release); }

private:
    MutexResult lock_slowly(pid_t self) noexcept;
};

static_assert(std::atomic<std::int32_t>::is_always_lock_free);

} // namespace forklock
