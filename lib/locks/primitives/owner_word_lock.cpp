#include "locks/primitives/owner_word_lock.h"

#include <algorithm>

#include "os/monotonic_clock.h"
#include "os/named_semaphore.h"
#include "os/os_error.h"

namespace forklock {
namespace {

constexpr int kSpins = 64;
constexpr std::int64_t kRecheckInterval = 50'000'000; // 50 ms

inline void cpu_relax() noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// The load first: a waiter spinning on a held word reads it shared instead of taking the cache
// line away from the holder with a failing lock cmpxchg.
bool cas_free_to(OwnerWord& w, pid_t self) noexcept
{
    std::int32_t expected = 0;
    return w.owner.load(std::memory_order_relaxed) == 0 &&
           w.owner.compare_exchange_strong(expected, self, std::memory_order_acquire,
                                           std::memory_order_relaxed);
}

// The nginx wake-up: take one sleeper off the count, then post once for it.
void wake_one(OwnerWord& w, NamedSemaphore& sem) noexcept
{
    std::int32_t n = w.wait.load(std::memory_order_relaxed);
    do {
        if (n <= 0)
            return;
    } while (!w.wait.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel));
    try {
        sem.post();
    } catch (const std::system_error& e) {
        log_os_error(e.code().value(), "sem_post() in unlock");
    }
}

bool spin_for(OwnerWord& w, pid_t self) noexcept
{
    for (int i = 0; i < kSpins; ++i) {
        for (int j = 0; j < (1 << std::min(i, 6)); ++j)
            cpu_relax();
        if (cas_free_to(w, self))
            return true;
    }
    return false;
}

} // namespace

bool owner_try_lock(OwnerWord& w, pid_t self) noexcept { return cas_free_to(w, self); }

bool owner_lock(OwnerWord& w, NamedSemaphore& sem, pid_t self, std::optional<std::int64_t> deadline,
                bool& blocked)
{
    blocked = false;
    if (cas_free_to(w, self))
        return true;
    blocked = true;
    for (;;) {
        if (spin_for(w, self))
            return true;
        w.wait.fetch_add(1, std::memory_order_acq_rel);
        if (cas_free_to(w, self)) {
            w.wait.fetch_sub(1, std::memory_order_acq_rel);
            return true;
        }
        const std::int64_t now = monotonic_ns();
        std::int64_t until = now + kRecheckInterval;
        if (deadline)
            until = std::min(until, *deadline);
        if (!sem.wait_until(to_timespec(until))) {
            // Nobody woke us: take ourselves off the count (a racing waker may have done it too;
            // its post then wakes someone else once, harmlessly).
            w.wait.fetch_sub(1, std::memory_order_acq_rel);
            if (deadline && monotonic_ns() >= *deadline)
                return cas_free_to(w, self);
        }
    }
}

void owner_unlock(OwnerWord& w, NamedSemaphore& sem, pid_t self) noexcept
{
    std::int32_t expected = self;
    if (w.owner.compare_exchange_strong(expected, 0, std::memory_order_release,
                                        std::memory_order_relaxed))
        wake_one(w, sem);
}

bool owner_force_unlock(OwnerWord& w, NamedSemaphore& sem, pid_t dead) noexcept
{
    std::int32_t expected = dead;
    if (!w.owner.compare_exchange_strong(expected, 0, std::memory_order_release,
                                         std::memory_order_relaxed))
        return false;
    wake_one(w, sem);
    return true;
}

} // namespace forklock
