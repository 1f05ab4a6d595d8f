// The postgres lock mode's cost, against a throwaway PostgreSQL 15 (harness/pg_cluster.h) on a
// Unix socket: an uncontended lock + unlock through LockTable, and a try_lock that fails (the
// key held by another session), each one or two round trips. Prints; asserts nothing.
//   build/bench/bench_postgres [iterations]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "harness/pg_cluster.h"
#include "locks/lock_table.h"

using forklock::KeyGuard;
using forklock::LockMode;
using forklock::LockTable;
using forklock::LockTableOptions;

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

int main(int argc, char** argv)
{
    const int n = argc > 1 ? std::atoi(argv[1]) : 5000;
    forklock::harness::PgCluster cluster;
    LockTableOptions o;
    o.mode = LockMode::postgres;
    o.url = cluster.conninfo();
    LockTable mine(o);
    LockTable other(o);      // another session in this thread
    (void)mine.lock("warm"); // connect and make the key's id outside the timing
    const double pair = us_per_op(n, [&] { KeyGuard g = mine.lock("warm"); });
    KeyGuard held = other.lock("held");
    (void)mine.try_lock("held");
    const double refused = us_per_op(n, [&] { (void)mine.try_lock("held"); });
    std::printf("postgres mode, %d iterations, Unix socket:\n", n);
    std::printf("  lock + unlock, uncontended:     %.1f us (2 round trips)\n", pair);
    std::printf("  try_lock of a key held elsewhere: %.1f us (1 round trip)\n", refused);
    return 0;
}
