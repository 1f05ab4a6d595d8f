#pragma once
// LockMetrics: the distributions /metrics shows (lock wait and hold times) and the overlaps
// witnessed, in one MAP_SHARED anonymous mapping the master makes before fork, so one scrape of
// any worker sees every worker's increments. Made whatever the lock mode and even with --no-trace.
//
// Shared across processes and threads: every member may be called concurrently; all counters are
// relaxed atomics (a scrape may see a count and a sum from slightly different moments).
//
// Overlaps are detected by the writers, cheaply: a table of kHolderBuckets "holders inside"
// counts, indexed by a hash of the key. enter() increments the key's bucket and, if someone was
// already inside, counts one overlap; leave() decrements it. Two keys that share a bucket look
// like one key (with 4096 buckets, rare for the handful of hot keys a race needs), and a process
// killed inside the section leaves its bucket one too high, so later holders of those keys count
// as overlaps: the counter can overstate, never miss one. GET /analysis counts exactly, from the
// trace.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "os/memory_region.h"

namespace forklock {

// Upper bounds of the buckets, in ns: 1 us .. 10 s by decades, then +Inf.
inline constexpr std::array<std::int64_t, 8> kHistogramBoundsNs = {
    1'000, 10'000, 100'000, 1'000'000, 10'000'000, 100'000'000, 1'000'000'000, 10'000'000'000};

struct HistogramSnapshot {
    std::array<std::uint64_t, kHistogramBoundsNs.size() + 1> cumulative{}; // last = +Inf = count
    std::uint64_t count = 0;
    double sum_seconds = 0;
};

// One histogram's counters: standard-layout and pointer-free, to live in shared memory.
struct Histogram {
    std::array<std::atomic<std::uint64_t>, kHistogramBoundsNs.size() + 1>
        buckets{}; // per bucket, not cumulative
    std::atomic<std::uint64_t> sum_ns{0};

    void observe(std::int64_t ns) noexcept;
    HistogramSnapshot snapshot() const noexcept;
};

class LockMetrics final {
public:
    static constexpr std::size_t kHolderBuckets = 4096;

    // Maps the counters, zeroed. Throws std::system_error if mmap fails.
    LockMetrics();
    LockMetrics(LockMetrics&&) noexcept = default;
    LockMetrics& operator=(LockMetrics&&) noexcept = default;

    // enter: the calling thread is now inside `key`'s critical section; returns true (and counts
    // one overlap) if another holder was already inside. leave: it left. Call each once per
    // section, enter after acquiring, leave before or after releasing.
    bool enter(std::string_view key) noexcept;
    void leave(std::string_view key) noexcept;

    Histogram& wait() const noexcept;
    Histogram& hold() const noexcept;
    std::uint64_t overlaps() const noexcept;

    struct Shared;

private:
    Shared& shared() const noexcept;
    MemoryRegion region_;
};

} // namespace forklock
