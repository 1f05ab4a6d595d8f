#pragma once
// The slot table's memory layout and index words, shared by its source files (slot_table.cpp,
// slot_eviction.cpp, slot_scans.cpp): the header, a partition, an index entry, a slot's state
// word. Internal to lib/locks/table/; see slot_table.h for the contract.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <pthread.h>

#include "locks/primitives/pid_spin_lock.h"
#include "locks/table/slot.h"
#include "locks/table/slot_table.h"

namespace forklock {

struct alignas(64) SlotTable::Header {
    pthread_mutex_t pool_lock;
    std::uint32_t pool_top;         // pool_[0..pool_top) are free slot ids
    std::uint32_t bound_high_water; // most slots ever out of the pool (under pool_lock)
    std::uint64_t seed;             // the hash's, written once by the creator
    alignas(64) std::atomic<std::uint64_t> full_errors;
    // token_floor: every token a key bound from now on starts above (Slot::fence): raised to an
    // evicted key's last token, so a key evicted and bound again never goes back.
    std::atomic<std::uint64_t> token_floor;
};

struct alignas(64) SlotTable::Partition {
    PidSpinLock lock;
    std::uint32_t bound; // keys indexed here
    std::uint32_t hand;  // where the next search for an idle slot starts (a clock hand)
    // Written under `lock` only, so no shared counter is touched on the hot paths.
    std::uint64_t evictions;
    std::uint64_t retired_recoveries; // recoveries counted on keys since evicted
    // changes: bumped (under `lock`) after every change to the index, on its own line because the
    // hit path reads it. A miss that saw no change since before its lockless probe need not probe
    // again under the lock.
    alignas(64) std::atomic<std::uint32_t> changes;
};

namespace slot_detail {

inline constexpr std::uint64_t kEmpty = 0;
inline constexpr std::uint64_t kNotMissed =
    ~std::uint64_t{0};                              // never equal to a 32-bit change count
inline constexpr std::size_t kHeaderBytes = 256;    // room for SlotTable::Header
inline constexpr std::size_t kPartitionBytes = 128; // one SlotTable::Partition, two cache lines

// An index entry: the hash's low 32 bits (home position and a cheap filter) and slot id + 1.
inline std::uint64_t make_entry(std::uint64_t hash, std::uint32_t id)
{
    return (hash & 0xffffffffu) << 32 | (std::uint64_t{id} + 1);
}
inline std::uint32_t entry_id(std::uint64_t e)
{
    return static_cast<std::uint32_t>(e & 0xffffffffu) - 1;
}
inline std::uint32_t entry_hash(std::uint64_t e) { return static_cast<std::uint32_t>(e >> 32); }

// The word Slot::state holds: what the slot does, and for which partition.
inline std::uint32_t make_state(SlotState s, std::uint32_t partition)
{
    return static_cast<std::uint32_t>(s) << 24 | partition;
}

inline std::uint32_t partition_of(std::uint64_t hash, const TableGeometry& g)
{
    return static_cast<std::uint32_t>((hash >> 32) & (g.partitions - 1));
}

} // namespace slot_detail
} // namespace forklock
