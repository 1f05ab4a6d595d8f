#pragma once
// OwnerWordLock: nginx's ngx_shmtx, for memory shared across fork().
//
// Two parts, as in nginx: OwnerWord is the shared state (placed in shared memory, standard-layout,
// pointer-free); OwnerWordLock is a per-process handle that points at a word and at the
// NamedSemaphore its waiters sleep on, and acts for one pid.
//
// The lock IS the owner word: 0 when free, the holder's pid when held, set by the one
// compare-and-swap that acquires, so a held lock always names its holder. Waiters spin briefly,
// then count themselves in `wait` and sleep on the semaphore; unlock clears the word and posts
// once if anyone counted.
//
// Shared across processes: yes, when the word and the semaphore are inherited (made before fork).
// Across threads: yes, but threads of one process share a pid, so the word says "held by this
// process": any of its threads may unlock. Not reentrant: lock() by the holder waits forever.
// Owner death: the word keeps the dead pid, exactly like a multiprocessing.Lock, until a
// supervisor that reaped that pid calls force_unlock(pid). A waiter killed after taking a wake-up
// leaves the others asleep until their deadline: lock() rechecks every kRecheckInterval, a timed
// caller decides itself how long it sleeps before looking again (one deadline per wait).
// Invalid: unlock() through a handle whose pid does not hold the word (it changes nothing);
// force_unlock() of a live pid (it steals that process's lock).

#include <atomic>
#include <cstdint>
#include <sys/types.h>

namespace forklock {

class NamedSemaphore;

struct OwnerWord {
    std::atomic<std::int32_t> owner; // 0 or the holder's pid
    std::atomic<std::int32_t> wait;  // sleepers to wake; may dip below 0 for a moment, as in nginx
};
static_assert(std::atomic<std::int32_t>::is_always_lock_free);

class OwnerWordLock {
public:
    // How long lock() sleeps before it re-reads the word, should its wake-up be lost.
    static constexpr std::int64_t kRecheckInterval = 50'000'000; // 50 ms

    // A handle acting for `self` (normally current_pid(); tests use made-up pids). Both
    // references must outlive the handle.
    OwnerWordLock(OwnerWord& word, NamedSemaphore& sem, pid_t self) noexcept
        : word_(&word), sem_(&sem), self_(self)
    {
    }

    // try_lock: one compare-and-swap from 0 to self. Inline: it is the table's hit path.
    [[nodiscard]] bool try_lock() noexcept
    {
        std::int32_t expected = 0;
        return word_->owner.load(std::memory_order_relaxed) == 0 &&
               word_->owner.compare_exchange_strong(expected, self_, std::memory_order_acquire,
                                                    std::memory_order_relaxed);
    }
    // try_lock_until: blocks until held (true) or the CLOCK_MONOTONIC deadline (ns) passes
    // (false). Sleeps at most until the deadline: the caller picks how often it looks again.
    [[nodiscard]] bool try_lock_until(std::int64_t deadline_ns);
    // lock: blocks until held, rechecking every kRecheckInterval.
    void lock();
    // unlock: frees the word if self holds it and wakes one sleeper.
    void unlock() noexcept { (void)force_unlock(self_); }
    // force_unlock: frees the word only if `holder` holds it, waking one sleeper; true if it did.
    bool force_unlock(pid_t holder) noexcept;

    pid_t owner() const noexcept { return word_->owner.load(std::memory_order_relaxed); }

private:
    void wake_one() noexcept;
    bool spin() noexcept;

    OwnerWord* word_;
    NamedSemaphore* sem_;
    pid_t self_;
};

} // namespace forklock
