#pragma once
// Operations on a pthread_mutex_t that lives in memory someone else owns (a table slot), in the two
// flavours the lock table needs.
//
// MutexKind::private_default: the attributes std::mutex uses (std::mutex is this pthread mutex).
//   Excludes threads of one process; in MAP_PRIVATE memory, fork() gives each child its own copy.
// MutexKind::shared_robust: PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST, no priority inheritance
//   (much slower under contention: bench/bench_lock_table). If the holder dies, the next locker gets
//   MutexResult::owner_died and holds the mutex; it must call make_consistent() before unlocking or
//   the mutex becomes unusable forever. Initialise once, never destroy or re-initialise while the
//   memory is mapped (glibc BZ 14485).

#include <ctime>
#include <pthread.h>

namespace forklock {

enum class MutexKind { private_default, shared_robust };
enum class MutexResult { acquired, owner_died, busy, timed_out };

void init_mutex(pthread_mutex_t* m, MutexKind kind);

namespace detail {
// The outcome of a pthread call that did not return 0: EOWNERDEAD, EBUSY, ETIMEDOUT as results,
// anything else as std::system_error naming `call`.
MutexResult mutex_result(int err, const char* call);
MutexResult lock_mutex_until(pthread_mutex_t* m, const timespec& monotonic_deadline);
void log_unlock_error(int err) noexcept;
} // namespace detail

// Inline because they are the lock table's hot path: one call into glibc and a test for 0.

// lock_mutex: blocks until acquired (or the CLOCK_MONOTONIC deadline passes, if one is given).
// Throws std::system_error on EDEADLK, ENOTRECOVERABLE and other errors.
inline MutexResult lock_mutex(pthread_mutex_t* m, const timespec* monotonic_deadline = nullptr)
{
    if (monotonic_deadline) return detail::lock_mutex_until(m, *monotonic_deadline);
    const int err = ::pthread_mutex_lock(m);
    return err == 0 ? MutexResult::acquired : detail::mutex_result(err, "pthread_mutex_lock()");
}

inline MutexResult try_lock_mutex(pthread_mutex_t* m)
{
    const int err = ::pthread_mutex_trylock(m);
    return err == 0 ? MutexResult::acquired : detail::mutex_result(err, "pthread_mutex_trylock()");
}

inline void unlock_mutex(pthread_mutex_t* m) noexcept
{
    if (const int err = ::pthread_mutex_unlock(m); err != 0) detail::log_unlock_error(err);
}

void make_consistent(pthread_mutex_t* m);

// ScopedMutex: the table's own bookkeeping locks (partitions, free pool), as a scoped guard.
// `repair` runs while holding the mutex when the previous holder died in the middle.
template <typename Repair>
class ScopedMutex {
public:
    ScopedMutex(pthread_mutex_t* m, Repair&& repair) : m_(m)
    {
        if (lock_mutex(m_) == MutexResult::owner_died) {
            repair();
            make_consistent(m_);
        }
    }
    ~ScopedMutex() { unlock_mutex(m_); }
    ScopedMutex(const ScopedMutex&) = delete;
    ScopedMutex& operator=(const ScopedMutex&) = delete;

private:
    pthread_mutex_t* m_;
};

} // namespace forklock
