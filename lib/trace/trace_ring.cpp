#include "trace/trace_ring.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <stdexcept>

#include <fmt/format.h>

namespace forklock {

// Own cache line: the sequence counter is the one word every writer touches.
struct alignas(64) TraceRing::Header {
    std::atomic<std::uint64_t> next_seq{0};
};

struct TraceRing::Slot {
    std::atomic<std::uint64_t> stamp{0}; // 0 never written, 2*seq+1 being written, 2*seq+2 whole
    TraceRecord record;
};

static_assert(std::is_standard_layout_v<TraceRing::Slot>);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the stamps are shared across processes");

namespace {

enum class Copy { whole, skipped, overwritten };

constexpr std::uint64_t writing(std::uint64_t seq) { return 2 * seq + 1; }
constexpr std::uint64_t whole(std::uint64_t seq) { return 2 * seq + 2; }

std::size_t checked_capacity(std::size_t capacity)
{
    if (capacity < TraceRing::kMinCapacity || capacity > TraceRing::kMaxCapacity ||
        !std::has_single_bit(capacity))
        throw std::invalid_argument(fmt::format("trace capacity {} is not a power of two in {}..{}",
                                                capacity, TraceRing::kMinCapacity,
                                                TraceRing::kMaxCapacity));
    return capacity;
}

} // namespace

std::string_view to_string(TraceOutcome outcome) noexcept
{
    switch (outcome) {
    case TraceOutcome::written: return "written";
    case TraceOutcome::timed_out: return "timed_out";
    case TraceOutcome::failed: return "failed";
    case TraceOutcome::reset: return "reset";
    case TraceOutcome::refused: return "refused";
    case TraceOutcome::lost_lock: return "lost_lock";
    }
    return "unknown";
}

void TraceRecord::set_key(std::string_view k) noexcept
{
    key_length = static_cast<std::uint32_t>(std::min(k.size(), kTraceKeyLength));
    std::memcpy(key, k.data(), key_length);
    std::memset(key + key_length, 0, kTraceKeyLength - key_length);
}

std::uint32_t trace_checksum(const TraceRecord& r) noexcept
{
    static_assert(sizeof(TraceRecord) % sizeof(std::uint64_t) == 0);
    TraceRecord copy = r;
    copy.checksum = 0;
    std::uint64_t words[sizeof(TraceRecord) / sizeof(std::uint64_t)];
    std::memcpy(words, &copy, sizeof copy);
    std::uint64_t h = 0x9E3779B97F4A7C15ull;
    for (std::uint64_t w : words) h = std::rotl((h ^ w) * 0xFF51AFD7ED558CCDull, 29);
    return static_cast<std::uint32_t>(h ^ (h >> 32));
}

TraceRing::TraceRing(std::size_t capacity)
    : region_(sizeof(Header) + checked_capacity(capacity) * sizeof(Slot),
              MemoryRegion::Sharing::shared),
      mask_(capacity - 1)
{
    new (region_.data()) Header;
    auto* slots = reinterpret_cast<Slot*>(static_cast<char*>(region_.data()) + sizeof(Header));
    for (std::size_t i = 0; i < capacity; ++i) new (&slots[i]) Slot;
}

TraceRing::Header& TraceRing::header() const noexcept
{
    return *static_cast<Header*>(region_.data());
}

TraceRing::Slot& TraceRing::slot(std::uint64_t seq) const noexcept
{
    auto* slots = reinterpret_cast<Slot*>(static_cast<char*>(region_.data()) + sizeof(Header));
    return slots[seq & mask_];
}

std::uint64_t TraceRing::head() const noexcept
{
    return header().next_seq.load(std::memory_order_acquire);
}

std::uint64_t TraceRing::start_record() noexcept
{
    std::uint64_t seq = header().next_seq.fetch_add(1, std::memory_order_relaxed);
    slot(seq).stamp.store(writing(seq), std::memory_order_relaxed);
    std::atomic_thread_fence(
        std::memory_order_release); // the odd stamp is seen before any new byte
    return seq;
}

void TraceRing::finish_record(std::uint64_t seq, const TraceRecord& r) noexcept
{
    Slot& s = slot(seq);
    TraceRecord copy = r;
    copy.seq = seq;
    copy.checksum = trace_checksum(copy);
    std::memcpy(&s.record, &copy, sizeof copy);
    // A writer a lap ahead may own the slot now: then it publishes, not us.
    std::uint64_t expected = writing(seq);
    s.stamp.compare_exchange_strong(expected, whole(seq), std::memory_order_release,
                                    std::memory_order_relaxed);
}

// The seqlock read: the stamp before and after the copy must both say "seq, whole".
bool TraceRing::copy(std::uint64_t seq, TraceRecord& out) const noexcept
{
    const Slot& s = slot(seq);
    std::uint64_t before = s.stamp.load(std::memory_order_acquire);
    if (before != whole(seq)) return false;
    std::memcpy(&out, &s.record, sizeof out);
    std::atomic_thread_fence(std::memory_order_acquire);
    return s.stamp.load(std::memory_order_relaxed) == before && out.seq == seq &&
           trace_checksum(out) == out.checksum;
}

TraceRead TraceRing::read(std::uint64_t since, std::size_t limit,
                          std::optional<std::string_view> key) const
{
    TraceRead out;
    std::uint64_t head = this->head();
    std::uint64_t oldest = head > capacity() ? head - capacity() : 0;
    out.dropped = since < oldest ? oldest - since : 0;
    std::uint64_t seq = std::max(since, oldest);
    for (; seq < head && out.records.size() < limit; ++seq) {
        TraceRecord r;
        if (!copy(seq, r)) {
            // Overwritten while we read (a newer stamp): dropped too. Odd or older: being written.
            if (slot(seq).stamp.load(std::memory_order_relaxed) > whole(seq)) ++out.dropped;
            continue;
        }
        if (!key || r.key_view() == *key) out.records.push_back(r);
    }
    out.next = seq;
    return out;
}

} // namespace forklock
