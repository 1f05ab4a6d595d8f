// The slot table's upkeep: evicting an idle slot for a new key, the free pool, and the repair
// of a partition or the pool whose lock holder died (slot_table.h: capacity, owner death).

#include <algorithm>

#include "locks/table/slot_layout.h"
#include "os/current_pid.h"

namespace forklock {

using namespace slot_detail;

Slot* SlotTable::evict_idle(std::uint32_t p)
{
    Partition& part = partitions_[p];
    const Entry* idx = index(p);
    const std::uint32_t mask = geometry_.index_size - 1;
    for (std::uint32_t n = 0; n <= mask; ++n) {
        const std::uint32_t pos = (part.hand + n) & mask;
        const std::uint64_t e = idx[pos].load(std::memory_order_relaxed);
        if (e == kEmpty) continue;
        Slot& s = slots_[entry_id(e)];
        if (!claim_if_idle(s)) continue;
        part.hand = (pos + 1) & mask;
        s.state.store(make_state(SlotState::claimed, p), std::memory_order_release);
        index_erase(p, pos);
        ++part.evictions;
        part.retired_recoveries += s.recoveries.load(std::memory_order_relaxed);
        raise_token_floor(s.fence.load(std::memory_order_relaxed)); // the key's tokens go on above
        return &s;
    }
    return nullptr;
}

// claim_if_idle: the evictor's half of pinning (slot_table.h).
bool SlotTable::claim_if_idle(Slot& s)
{
    const std::uint32_t g = s.generation.load(std::memory_order_relaxed); // even: bound here
    if (by_lock_) {
        // The slot's lock, once ours, orders every acquirer before or after us: no fence needed
        // for them. The release fence keeps the odd generation ahead of the key we are about to
        // rewrite, for lockless readers in find().
        if (!locks_.claim(s)) return false;
        s.generation.store(g + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        return true;
    }
    // By reference: the odd generation goes out before we read refs, so a caller who counts
    // itself after our question sees it.
    s.generation.store(g + 1, std::memory_order_seq_cst);
    if (locks_.claim(s)) return true;
    // In use: nothing about the slot changed, so a reader who saw g may keep trusting it.
    s.generation.store(g, std::memory_order_release);
    return false;
}

void SlotTable::steal_idle_slot(std::uint32_t except)
{
    // One partition lock at a time: no lock-order cycles between partitions.
    for (std::uint32_t q = 0; q < geometry_.partitions; ++q) {
        if (q == except) continue;
        lock_partition(q);
        Slot* s = evict_idle(q);
        if (s) {
            if (by_lock_)
                locks_.unclaim(*s); // before the push: a crash in between leaves it claimed by q
            pool_push(*s);
        }
        unlock_partition(q);
        if (s) return;
    }
}

Slot* SlotTable::pool_pop(std::uint32_t p)
{
    ScopedMutex guard(&header_->pool_lock, [this] { repair_pool(); });
    if (header_->pool_top == 0) return nullptr;
    Slot& s = slots_[pool_[header_->pool_top - 1]];
    s.state.store(make_state(SlotState::claimed, p), std::memory_order_release);
    --header_->pool_top;
    header_->bound_high_water =
        std::max(header_->bound_high_water, geometry_.capacity - header_->pool_top);
    return &s;
}

void SlotTable::pool_push(Slot& s)
{
    ScopedMutex guard(&header_->pool_lock, [this] { repair_pool(); });
    s.state.store(make_state(SlotState::free, 0), std::memory_order_release);
    pool_[header_->pool_top++] = static_cast<std::uint32_t>(&s - slots_);
}

void SlotTable::repair_pool()
{
    std::uint32_t top = 0;
    for (std::uint32_t i = 0; i < geometry_.capacity; ++i)
        if (state_kind(slots_[i].state.load(std::memory_order_acquire)) == SlotState::free)
            pool_[top++] = i;
    header_->pool_top = top;
}

void SlotTable::repair_partition(std::uint32_t p) const
{
    auto* self = const_cast<SlotTable*>(this);
    Entry* idx = index(p);
    for (std::uint32_t i = 0; i < geometry_.index_size; ++i)
        idx[i].store(kEmpty, std::memory_order_relaxed);
    partitions_[p].bound = 0; // (index_insert below counts the changes)
    for (std::uint32_t i = 0; i < geometry_.capacity; ++i) {
        Slot& s = slots_[i];
        const std::uint32_t st = s.state.load(std::memory_order_acquire);
        if (state_partition(st) != p || state_kind(st) == SlotState::free) continue;
        locks_.clear_dead_claim(s);
        if (state_kind(st) == SlotState::bound) {
            // Killed between claiming it and deciding: a new even generation, same key.
            if (const std::uint32_t g = s.generation.load(std::memory_order_relaxed); g & 1)
                s.generation.store(g + 1, std::memory_order_release);
            self->index_insert(p, s.hash, i);
        } else if (state_kind(st) == SlotState::claimed)
            self->pool_push(s); // half-bound or half-evicted: its key was never visible
    }
}

} // namespace forklock
