#include "trace/histogram.h"

#include <functional>
#include <new>
#include <type_traits>

namespace forklock {

struct LockMetrics::Shared {
    Histogram wait;
    Histogram hold;
    std::atomic<std::uint64_t> overlaps{0};
    std::array<std::atomic<std::uint32_t>, kHolderBuckets> inside{};
};

static_assert(std::is_standard_layout_v<LockMetrics::Shared>);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the counters are shared across processes");

namespace {

std::size_t bucket_of(std::string_view key) noexcept
{
    return std::hash<std::string_view>{}(key) & (LockMetrics::kHolderBuckets - 1);
}

} // namespace

void Histogram::observe(std::int64_t ns) noexcept
{
    std::size_t i = 0;
    while (i < kHistogramBoundsNs.size() && ns > kHistogramBoundsNs[i]) ++i;
    buckets[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(static_cast<std::uint64_t>(ns < 0 ? 0 : ns), std::memory_order_relaxed);
}

HistogramSnapshot Histogram::snapshot() const noexcept
{
    HistogramSnapshot s;
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        total += buckets[i].load(std::memory_order_relaxed);
        s.cumulative[i] = total;
    }
    s.count = total;
    s.sum_seconds = static_cast<double>(sum_ns.load(std::memory_order_relaxed)) / 1e9;
    return s;
}

LockMetrics::LockMetrics() : region_(sizeof(Shared), MemoryRegion::Sharing::shared)
{
    new (region_.data()) Shared;
}

LockMetrics::Shared& LockMetrics::shared() const noexcept
{
    return *static_cast<Shared*>(region_.data());
}

bool LockMetrics::enter(std::string_view key) noexcept
{
    bool overlap = shared().inside[bucket_of(key)].fetch_add(1, std::memory_order_acq_rel) > 0;
    if (overlap) shared().overlaps.fetch_add(1, std::memory_order_relaxed);
    return overlap;
}

void LockMetrics::leave(std::string_view key) noexcept
{
    shared().inside[bucket_of(key)].fetch_sub(1, std::memory_order_acq_rel);
}

Histogram& LockMetrics::wait() const noexcept { return shared().wait; }
Histogram& LockMetrics::hold() const noexcept { return shared().hold; }
std::uint64_t LockMetrics::overlaps() const noexcept
{
    return shared().overlaps.load(std::memory_order_relaxed);
}

} // namespace forklock
