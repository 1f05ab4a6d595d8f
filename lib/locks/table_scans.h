#pragma once
// What a lock table answers over all its keys (statistics, a dead process's keys), for any mode:
// the bookkeeping of TableImpl<Mode> (lock_table.cpp), which runs the operations on one key.
// Each takes the partition locks one at a time (SlotTable::for_each_bound): a snapshot.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "locks/modes/mode.h"
#include <forklock/lock_stats.h>

namespace forklock {

// busy: held or waited on right now (by reference: pinned, which a waiter is too).
template <typename Mode>
bool slot_busy(const Mode& mode, const Slot& s, std::uint32_t waiters) noexcept
{
    if constexpr (Mode::kPinnedByLock)
        return mode.owner(s) != 0 || waiters != 0;
    else
        return s.refs.load(std::memory_order_relaxed) != 0;
}

inline std::uint32_t slot_id(const SlotTable& slots, const Slot& s) noexcept
{
    return static_cast<std::uint32_t>(&s - &slots.slot(0));
}

// release_owned_by: LockTable::release_owned_by for the table of `mode`.
template <typename Mode>
std::size_t release_owned_by(Mode& mode, SlotTable& slots, WaitRegistry& waits, pid_t pid)
{
    if (pid <= 0) return 0;
    std::vector<Slot*> owned;
    slots.for_each_bound([&](const Slot& s) {
        if (mode.owner(s) == pid) owned.push_back(const_cast<Slot*>(&s));
    });
    std::size_t freed = 0;
    for (Slot* s : owned) freed += mode.release_dead(*s, pid) ? 1 : 0;
    // And it waits on nothing any more. By reference, each wait also held a reference to its
    // slot, taken before the record and dropped after it: return those too, or the slot could
    // never be reused.
    for (const std::uint32_t slot : waits.forget(pid)) mode.unpin(slots.slot(slot));
    return freed;
}

template <typename Mode>
TableStats table_stats(const Mode& mode, const SlotTable& slots, const WaitRegistry& waits,
                       std::size_t capacity)
{
    TableStats t = slots.stats();
    t.shared = Mode::kSharing == MemoryRegion::Sharing::shared;
    const auto waiters = waits.count_by_slot(capacity);
    slots.for_each_bound(
        [&](const Slot& s) { t.active += slot_busy(mode, s, waiters[slot_id(slots, s)]) ? 1 : 0; });
    return t;
}

// key_stats: bound keys, most acquired first; `limit` 0 means all.
template <typename Mode>
std::vector<KeyStats> key_stats(const Mode& mode, const SlotTable& slots, const WaitRegistry& waits,
                                std::size_t capacity, std::size_t limit)
{
    std::vector<KeyStats> out;
    const auto waiters = waits.count_by_slot(capacity);
    slots.for_each_bound([&](const Slot& s) {
        KeyStats k;
        k.key.assign(s.key_view());
        k.owner_pid = mode.owner(s);
        k.waiters = waiters[slot_id(slots, s)];
        k.acquisitions = s.acquisitions.load(std::memory_order_relaxed);
        k.contended = s.contended.load(std::memory_order_relaxed);
        k.wait_ns_total = s.wait_ns_total.load(std::memory_order_relaxed);
        k.wait_ns_max = s.wait_ns_max.load(std::memory_order_relaxed);
        k.recoveries = s.recoveries.load(std::memory_order_relaxed);
        k.last_dead_owner = s.last_dead_owner.load(std::memory_order_relaxed);
        if constexpr (Mode::kTokens) k.last_token = s.fence.load(std::memory_order_relaxed);
        k.lease_takeovers = s.lease_takeovers.load(std::memory_order_relaxed);
        if (s.grant.load(std::memory_order_acquire) != 0)
            k.lease_left_ms = std::max<std::int64_t>(
                0, (s.lease_deadline.load(std::memory_order_relaxed) - monotonic_ns()) / 1'000'000);
        out.push_back(std::move(k));
    });
    std::sort(out.begin(), out.end(), [](const KeyStats& a, const KeyStats& b) {
        return a.acquisitions != b.acquisitions ? a.acquisitions > b.acquisitions : a.key < b.key;
    });
    if (limit && out.size() > limit) out.resize(limit);
    return out;
}

} // namespace forklock
