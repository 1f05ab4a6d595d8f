#pragma once
// TraceRecord: one critical section of one increment, as the trace ring stores it. It lives in
// MAP_SHARED memory that every worker writes, so it is standard-layout and holds no pointers;
// the key is copied into it (keys are at most kTraceKeyLength bytes, LockTable::kMaxKeyLength).

#include <sys/types.h>

#include <cstdint>
#include <string_view>
#include <type_traits>

namespace forklock {

inline constexpr std::size_t kTraceKeyLength = 128;

enum class TraceOutcome : std::uint32_t {
    written = 1,   // read, wrote, released: an increment that counted (or was lost by a race)
    timed_out = 2, // gave up waiting (timeout_ms): never acquired, acquired_ns = released_ns = 0
    failed = 3,    // the store or the table threw; acquired_ns is 0 when the lock call threw
    reset = 4,     // a DELETE: read the old value, wrote 0, under the key's lock
    refused = 5,   // --fencing: the store refused the write, its token older than the key's newest
    lost_lock = 6, // wrote, then its unlock found the key no longer its own: the lease ran out and
                   // another holder took it (or the lock server ended the session) in between
};

// wrote: the section wrote the counter (written, or lost_lock: a late write without --fencing).
constexpr bool wrote(TraceOutcome outcome) noexcept
{
    return outcome == TraceOutcome::written || outcome == TraceOutcome::lost_lock;
}

std::string_view to_string(TraceOutcome outcome) noexcept;

struct TraceRecord {
    std::uint64_t seq = 0;         // set by the ring: position in the run, from 0
    std::int64_t requested_ns = 0; // CLOCK_MONOTONIC, before the lock call
    std::int64_t acquired_ns = 0;  // after it returned with the key held (0: never held)
    std::int64_t unlock_ns = 0; // just before unlock: the section ended in [unlock_ns, released_ns]
    std::int64_t released_ns = 0; // after unlock (0: never held)
    std::uint64_t read = 0;       // the counter's value read under the lock
    std::uint64_t wrote = 0;      // the value written (written: read + 1; reset: 0)
    std::uint64_t token = 0;      // the grant's fencing token (KeyGuard::token()), 0 if none
    std::int32_t pid = 0;
    std::int32_t tid = 0;
    std::int32_t recovered_from = 0; // pid of a dead holder the lock was taken back from, or 0
    TraceOutcome outcome = TraceOutcome::written;
    std::uint32_t key_length = 0;
    std::uint32_t checksum = 0; // set by the ring: readers drop a record torn by a lapped writer
    char key[kTraceKeyLength] = {};

    std::string_view key_view() const noexcept { return {key, key_length}; }
    // set_key: truncates past kTraceKeyLength (the API never passes a longer key).
    void set_key(std::string_view k) noexcept;
    bool held() const noexcept { return acquired_ns != 0; }
};

static_assert(std::is_standard_layout_v<TraceRecord>);
static_assert(std::is_trivially_copyable_v<TraceRecord>);

} // namespace forklock
