#include "pg_round_trips.h"

#include <chrono>

#include <forklock/lock_table.h>

namespace forklock::bench {
namespace {

template <typename F>
double us_per_op(int n, F&& op)
{
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) op();
    const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    return took.count() / n;
}

} // namespace

RoundTrips measure_round_trips(const std::string& conninfo, int iterations)
{
    LockTableOptions o;
    o.mode = LockMode::postgres;
    o.url = conninfo;
    LockTable mine(o);
    LockTable other(o);      // another session in this thread
    (void)mine.lock("warm"); // connect and make the key's id outside the timing
    RoundTrips r;
    r.iterations = iterations;
    r.lock_unlock_us = us_per_op(iterations, [&] { KeyGuard g = mine.lock("warm"); });
    KeyGuard held = other.lock("held");
    (void)mine.try_lock("held");
    r.refused_us = us_per_op(iterations, [&] { (void)mine.try_lock("held"); });
    return r;
}

} // namespace forklock::bench
