#pragma once
// CLOCK_MONOTONIC in nanoseconds and as the absolute timespec deadlines that sem_clockwait and
// pthread_mutex_clocklock take.

#include <chrono>
#include <cstdint>
#include <ctime>

namespace forklock {

inline std::int64_t monotonic_ns() noexcept
{
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline timespec to_timespec(std::int64_t ns) noexcept
{
    return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

} // namespace forklock
