#include "locks/primitives/pid_spin_lock.h"

#include <cerrno>
#include <csignal>
#include <ctime>

#include <sched.h>

#include "locks/primitives/cpu_relax.h"

namespace forklock {
namespace {

// The waiter's rounds: spin while the holder is likely running (a section is a few hundred ns),
// then yield the core to it (it may be preempted: 2 cores, many workers), then nap so a long
// wait costs no CPU. The death check starts where spinning ends and repeats every kCheckEvery
// rounds: a system call, cheap beside a wait that long.
constexpr unsigned kSpinRounds = 100;
constexpr unsigned kYieldRounds = 1000;
constexpr unsigned kCheckEvery = 64;
constexpr long kNapNs = 50'000;

bool reaped(pid_t pid) noexcept
{
    const int saved = errno; // the caller's errno is not ours to change
    const bool gone = ::kill(pid, 0) != 0 && errno == ESRCH;
    errno = saved;
    return gone;
}

} // namespace

MutexResult PidSpinLock::lock_slowly(pid_t self) noexcept
{
    for (unsigned round = 1;; ++round) {
        std::int32_t seen = owner.load(std::memory_order_relaxed);
        // Read before the compare-and-swap: waiters share the line instead of taking it from
        // the holder with failing locked instructions.
        if (seen == 0) {
            if (owner.compare_exchange_weak(seen, self, std::memory_order_acquire,
                                            std::memory_order_relaxed))
                return MutexResult::acquired;
            continue;
        }
        if (round >= kSpinRounds && (round - kSpinRounds) % kCheckEvery == 0 && reaped(seen) &&
            owner.compare_exchange_strong(seen, self, std::memory_order_acquire,
                                          std::memory_order_relaxed))
            return MutexResult::owner_died;
        if (round < kSpinRounds)
            cpu_relax();
        else if (round < kYieldRounds)
            ::sched_yield();
        else {
            const timespec nap{0, kNapNs};
            ::nanosleep(&nap, nullptr);
        }
    }
}

} // namespace forklock
