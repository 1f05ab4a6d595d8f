#include "locks/primitives/owner_word_lock.h"

#include <algorithm>

#include "locks/primitives/cpu_relax.h"
#include "os/monotonic_clock.h"
#include "os/named_semaphore.h"
#include "os/os_error.h"

namespace forklock {
namespace {

constexpr int kSpins = 64;

} // namespace

// The nginx wake-up: take one sleeper off the count, then post once for it.
void OwnerWordLock::wake_one() noexcept
{
    std::int32_t n = word_->wait.load(std::memory_order_relaxed);
    do {
        if (n <= 0) return;
    } while (!word_->wait.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel));
    try {
        sem_->post();
    } catch (const std::system_error& e) {
        log_os_error(e.code().value(), "sem_post() in unlock");
    }
}

// spin: try_lock reads the word before its CAS, so a spinning waiter reads the line shared
// instead of taking it away from the holder with a failing lock cmpxchg.
bool OwnerWordLock::spin() noexcept
{
    for (int i = 0; i < kSpins; ++i) {
        for (int j = 0; j < (1 << std::min(i, 6)); ++j) cpu_relax();
        if (try_lock()) return true;
    }
    return false;
}

bool OwnerWordLock::try_lock_until(std::int64_t deadline_ns)
{
    if (try_lock()) return true;
    for (;;) {
        if (spin()) return true;
        word_->wait.fetch_add(1, std::memory_order_acq_rel);
        if (try_lock()) {
            word_->wait.fetch_sub(1, std::memory_order_acq_rel);
            return true;
        }
        if (!sem_->wait_until(to_timespec(deadline_ns))) {
            // Nobody woke us: take ourselves off the count (a racing waker may have done it too;
            // its post then wakes someone else once, harmlessly).
            word_->wait.fetch_sub(1, std::memory_order_acq_rel);
            return try_lock();
        }
    }
}

void OwnerWordLock::lock()
{
    while (!try_lock_until(monotonic_ns() + kRecheckInterval)) {}
}

bool OwnerWordLock::force_unlock(pid_t holder) noexcept
{
    std::int32_t expected = holder;
    if (!word_->owner.compare_exchange_strong(expected, 0, std::memory_order_release,
                                              std::memory_order_relaxed))
        return false;
    wake_one();
    return true;
}

} // namespace forklock
