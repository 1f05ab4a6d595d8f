// The postgres lock mode's cost, against a throwaway PostgreSQL 15 (harness/pg_cluster.h) on a
// Unix socket: an uncontended lock + unlock through LockTable, and a try_lock that fails (the
// key held by another session), each one or two round trips. Prints; asserts nothing.
//   build/bench/bench_postgres [iterations]

#include <cstdio>
#include <cstdlib>

#include "harness/pg_cluster.h"
#include "pg_round_trips.h"

int main(int argc, char** argv)
{
    const int n = argc > 1 ? std::atoi(argv[1]) : 5000;
    const forklock::harness::PgCluster cluster;
    const auto r = forklock::bench::measure_round_trips(cluster.conninfo(), n);
    std::printf("postgres mode, %d iterations, Unix socket:\n", n);
    std::printf("  lock + unlock, uncontended:     %.1f us (2 round trips)\n", r.lock_unlock_us);
    std::printf("  try_lock of a key held elsewhere: %.1f us (1 round trip)\n", r.refused_us);
    return 0;
}
