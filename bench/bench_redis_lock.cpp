// The redis lock mode's cost against a throwaway redis-server (harness/redis_server.h) on a Unix
// socket: an uncontended lock + unlock through LockTable (2 round trips: the lock script, the
// compare-and-delete script) and a try_lock of a key held elsewhere (1), beside redis-benchmark's
// own one-client round trips (PING, SET) on the same socket in the same run. Prints; asserts
// nothing.   build/bench/bench_redis_lock [iterations]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "harness/redis_server.h"
#include <forklock/lock_table.h>

namespace {

using Clock = std::chrono::steady_clock;

struct Figures {
    double mean_us = 0;
    double p50_us = 0;
    double p99_us = 0;
};

template <typename F>
Figures time_each(int n, F&& f)
{
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        const auto start = Clock::now();
        f();
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    std::sort(us.begin(), us.end());
    double sum = 0;
    for (const double u : us) sum += u;
    return {sum / n, us[us.size() / 2], us[us.size() * 99 / 100]};
}

// redis_benchmark: redis-benchmark's CSV for one client, no pipelining, on `socket`.
std::string redis_benchmark(const std::string& socket, int n)
{
    const std::string command = fmt::format(
        "redis-benchmark -s '{}' -n {} -c 1 -P 1 -t ping_mbulk,set --csv 2>&1", socket, n);
    std::string out;
    if (FILE* p = ::popen(command.c_str(), "r")) {
        char buf[512];
        while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
        ::pclose(p);
    }
    return out.empty() ? "(redis-benchmark did not run: apt-get install redis-tools)\n" : out;
}

} // namespace

int main(int argc, char** argv)
{
    const int n = argc > 1 ? std::max(100, std::atoi(argv[1])) : 20000;
    const forklock::harness::RedisServer redis;
    forklock::LockTableOptions o;
    o.mode = forklock::LockMode::redis;
    o.url = redis.url();
    forklock::LockTable table(o);
    forklock::LockTable other(o); // another connection: holds the key the refused try_lock wants
    for (int i = 0; i < 200; ++i) table.lock("warm").unlock(); // connect, load the scripts
    const Figures lock = time_each(n, [&] { table.lock("bench").unlock(); });
    forklock::KeyGuard held = other.lock("held");
    const Figures refused = time_each(n, [&] { (void)table.try_lock("held"); });
    std::printf("redis mode, %d iterations, one thread, Unix socket %s:\n", n,
                redis.socket().c_str());
    std::printf("  lock + unlock, uncontended:       mean %.1f us  p50 %.1f us  p99 %.1f us "
                "(2 round trips)\n",
                lock.mean_us, lock.p50_us, lock.p99_us);
    std::printf("  try_lock of a key held elsewhere: mean %.1f us  p50 %.1f us  p99 %.1f us "
                "(1 round trip)\n",
                refused.mean_us, refused.p50_us, refused.p99_us);
    std::printf("redis-benchmark -c 1 -P 1 on the same socket (latencies in ms):\n%s",
                redis_benchmark(redis.socket().string(), n).c_str());
    return 0;
}
