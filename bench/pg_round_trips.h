#pragma once
// The postgres lock mode's round trips, measured through LockTable against a PostgreSQL at
// `conninfo` (bench_postgres and compare_pgbench print them). Uses the calling thread's sessions
// and the keys "warm" and "held"; asserts nothing.

#include <string>

namespace forklock::bench {

struct RoundTrips {
    int iterations = 0;
    double lock_unlock_us = 0; // an uncontended lock + unlock: 2 round trips
    double refused_us = 0;     // a try_lock of a key another session holds: 1 round trip
};

RoundTrips measure_round_trips(const std::string& conninfo, int iterations);

} // namespace forklock::bench
