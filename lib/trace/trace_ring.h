#pragma once
// TraceRing: the last N critical sections of every worker, in one MAP_SHARED anonymous mapping the
// master makes before fork, whatever the lock mode: it observes the lock, it is never the lock, so
// even thread mode's workers (which share no lock) write to one trace.
//
// Shared across processes and threads: every member may be called concurrently from any thread
// of any process forked after construction. Writers are lock-free: a fetch_add on the shared
// sequence counter picks the record (seq % capacity); a stamp word per record is 2*seq+1 while it
// is written and 2*seq+2, stored last with release, once it is whole. Readers copy a record and
// keep it only if its stamp said "whole, seq" before and after the copy and its checksum matches
// (a writer lapped by a whole ring while stopped mid-record could otherwise tear it).
//
// Writer death: a writer killed between start_record() and finish_record() leaves its stamp odd;
// readers skip that record and the writer that comes to the slot a lap later overwrites it.
// Nothing ever waits on a stamp, so nothing gets stuck. Nothing has a name: nothing is left in
// /dev/shm. The mapping goes when the last process that has it exits.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "os/memory_region.h"
#include "trace/trace_record.h"

namespace forklock {

struct TraceRead {
    std::vector<TraceRecord> records; // oldest first
    std::uint64_t next = 0;           // the `since` that continues after these records
    std::uint64_t dropped = 0;        // records after `since` overwritten before this read
};

class TraceRing final {
public:
    static constexpr std::size_t kDefaultCapacity = 65536;
    static constexpr std::size_t kMinCapacity = 16;
    static constexpr std::size_t kMaxCapacity = std::size_t{1} << 24;

    // Maps the ring: `capacity` records, a power of two in kMinCapacity..kMaxCapacity (else
    // std::invalid_argument). Throws std::system_error if mmap fails.
    explicit TraceRing(std::size_t capacity = kDefaultCapacity);
    TraceRing(TraceRing&&) noexcept = default;
    TraceRing& operator=(TraceRing&&) noexcept = default;

    std::size_t capacity() const noexcept { return mask_ + 1; }
    // Records ever started (the next seq to be handed out).
    std::uint64_t head() const noexcept;

    // record: stores `r` (its seq and checksum are set here). Lock-free, never blocks.
    void record(const TraceRecord& r) noexcept { finish_record(start_record(), r); }
    // The two halves of record(), for a writer that wants its seq first: start_record() reserves
    // the next seq and marks its record as being written; finish_record() fills and publishes it.
    std::uint64_t start_record() noexcept;
    void finish_record(std::uint64_t seq, const TraceRecord& r) noexcept;

    // read: whole records with seq >= since, oldest first, at most `limit` of them, only those of
    // `key` if given. Skips records being written (or left half-written by a dead writer).
    TraceRead read(std::uint64_t since, std::size_t limit,
                   std::optional<std::string_view> key = std::nullopt) const;

    struct Header;
    struct Slot;

private:
    Header& header() const noexcept;
    Slot& slot(std::uint64_t seq) const noexcept;
    bool copy(std::uint64_t seq, TraceRecord& out) const noexcept;

    MemoryRegion region_;
    std::uint64_t mask_;
};

// The checksum finish_record() stores and read() verifies (the record's checksum field excluded).
std::uint32_t trace_checksum(const TraceRecord& r) noexcept;

} // namespace forklock
