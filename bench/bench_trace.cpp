// bench_trace: the cost of tracing one increment, in ns: TraceRing::record() alone, and with the
// LockMetrics work an increment adds (enter, leave, two histogram observations, three clock
// reads). Median of 5 runs of 1,000,000 records on one thread, into a 65,536-record ring.
//
//   build/bench/bench_trace [records]

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "os/monotonic_clock.h"
#include "trace/histogram.h"
#include "trace/trace_ring.h"

using namespace forklock;

namespace {

template <typename F>
double ns_per_op(std::uint64_t n, F&& f)
{
    std::array<double, 5> runs{};
    for (auto& run : runs) {
        std::int64_t t0 = monotonic_ns();
        for (std::uint64_t i = 0; i < n; ++i) f(i);
        run = static_cast<double>(monotonic_ns() - t0) / static_cast<double>(n);
    }
    std::sort(runs.begin(), runs.end());
    return runs[2];
}

TraceRecord sample(std::uint64_t i)
{
    TraceRecord r;
    r.pid = 4101;
    r.tid = 4101;
    r.read = i;
    r.wrote = i + 1;
    r.set_key("hot");
    return r;
}

} // namespace

int main(int argc, char** argv)
{
    std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
    TraceRing ring(TraceRing::kDefaultCapacity);
    LockMetrics metrics;
    double record = ns_per_op(n, [&](std::uint64_t i) { ring.record(sample(i)); });
    double full = ns_per_op(n, [&](std::uint64_t i) {
        TraceRecord r = sample(i);
        r.requested_ns = monotonic_ns();
        r.acquired_ns = monotonic_ns();
        metrics.enter("hot");
        metrics.leave("hot");
        r.unlock_ns = r.released_ns = monotonic_ns();
        metrics.wait().observe(r.acquired_ns - r.requested_ns);
        metrics.hold().observe(r.released_ns - r.acquired_ns);
        ring.record(r);
    });
    std::printf("trace record:                  %.1f ns (median of 5 x %llu)\n", record,
                static_cast<unsigned long long>(n));
    std::printf("record + metrics + clock reads: %.1f ns\n", full);
    return 0;
}
