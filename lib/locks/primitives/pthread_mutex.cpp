#include "locks/primitives/pthread_mutex.h"

#include <cerrno>

#include "os/os_error.h"

namespace forklock {
namespace {

void check(int err, const char* call)
{
    if (err != 0) throw os_error(err, "{}", call);
}

} // namespace

void init_mutex(pthread_mutex_t* m, MutexKind kind)
{
    pthread_mutexattr_t attr;
    check(::pthread_mutexattr_init(&attr), "pthread_mutexattr_init()");
    if (kind == MutexKind::shared_robust) {
        check(::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED),
              "pthread_mutexattr_setpshared(PTHREAD_PROCESS_SHARED)");
        check(::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST),
              "pthread_mutexattr_setrobust(PTHREAD_MUTEX_ROBUST)");
    }
    const int err = ::pthread_mutex_init(m, &attr);
    ::pthread_mutexattr_destroy(&attr);
    check(err, "pthread_mutex_init()");
}

namespace detail {

MutexResult mutex_result(int err, const char* call)
{
    switch (err) {
    case 0: return MutexResult::acquired;
    case EOWNERDEAD: return MutexResult::owner_died;
    case EBUSY: return MutexResult::busy;
    case ETIMEDOUT: return MutexResult::timed_out;
    default: throw os_error(err, "{}", call);
    }
}

MutexResult lock_mutex_until(pthread_mutex_t* m, const timespec& deadline)
{
    return mutex_result(::pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &deadline),
                        "pthread_mutex_clocklock(CLOCK_MONOTONIC)");
}

void log_unlock_error(int err) noexcept { log_os_error(err, "pthread_mutex_unlock()"); }

} // namespace detail

void make_consistent(pthread_mutex_t* m)
{
    check(::pthread_mutex_consistent(m), "pthread_mutex_consistent()");
}

} // namespace forklock
