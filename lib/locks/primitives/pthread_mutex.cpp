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

// gcc says __SANITIZE_THREAD__, clang __has_feature (which gcc 12 cannot even parse).
#if defined(__SANITIZE_THREAD__)
#define FORKLOCK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FORKLOCK_TSAN 1
#endif
#endif

#ifdef FORKLOCK_TSAN
// ThreadSanitizer (gcc 12, clang 14) does not intercept pthread_mutex_clocklock: it would miss
// every acquisition made by a timed wait and report their unlocks and sections as races. Its
// builds only take the same monotonic deadline as a CLOCK_REALTIME one for timedlock, which it
// sees (a clock step during a wait moves that deadline: acceptable in a sanitizer build).
MutexResult lock_mutex_until(pthread_mutex_t* m, const timespec& deadline)
{
    timespec mono{}, real{};
    ::clock_gettime(CLOCK_MONOTONIC, &mono);
    ::clock_gettime(CLOCK_REALTIME, &real);
    long long ns = (deadline.tv_sec - mono.tv_sec + real.tv_sec) * 1'000'000'000LL +
                   (deadline.tv_nsec - mono.tv_nsec + real.tv_nsec);
    const timespec until{static_cast<time_t>(ns / 1'000'000'000LL),
                         static_cast<long>(ns % 1'000'000'000LL)};
    return mutex_result(::pthread_mutex_timedlock(m, &until), "pthread_mutex_timedlock()");
}
#else
MutexResult lock_mutex_until(pthread_mutex_t* m, const timespec& deadline)
{
    return mutex_result(::pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &deadline),
                        "pthread_mutex_clocklock(CLOCK_MONOTONIC)");
}
#endif

void log_unlock_error(int err) noexcept { log_os_error(err, "pthread_mutex_unlock()"); }

} // namespace detail

void make_consistent(pthread_mutex_t* m)
{
    check(::pthread_mutex_consistent(m), "pthread_mutex_consistent()");
}

} // namespace forklock
