// The slot table's readers over many keys: for_each_bound, visit_bound and stats, each under
// the partition locks it reads.

#include <functional>

#include "locks/table/slot_keys.h"
#include "locks/table/slot_layout.h"

namespace forklock {

using namespace slot_detail;

void SlotTable::for_each_bound(const std::function<void(const Slot&)>& f) const
{
    for (std::uint32_t p = 0; p < geometry_.partitions; ++p) {
        lock_partition(p);
        const Entry* idx = index(p);
        try {
            for (std::uint32_t pos = 0; pos < geometry_.index_size; ++pos)
                if (const std::uint64_t e = idx[pos].load(std::memory_order_relaxed); e != kEmpty)
                    f(slots_[entry_id(e)]);
        } catch (...) {
            unlock_partition(p);
            throw;
        }
        unlock_partition(p);
    }
}

bool SlotTable::visit_bound(std::string_view key, const std::function<void(const Slot&)>& f) const
{
    const std::uint64_t h = hash_key(key, seed_);
    const std::uint32_t p = partition_of(h, geometry_);
    lock_partition(p);
    bool sure = true;
    const SlotRef r = find(p, key, h, sure); // under the lock nothing is being rebound
    try {
        if (r.slot) f(*r.slot);
    } catch (...) {
        unlock_partition(p);
        throw;
    }
    unlock_partition(p);
    return r.slot != nullptr;
}

TableStats SlotTable::stats() const
{
    TableStats t;
    t.capacity = geometry_.capacity;
    t.keys_high_water = header_->bound_high_water; // a racy read of a monotonic number: fine
    t.full_errors = header_->full_errors.load(std::memory_order_relaxed);
    for (std::uint32_t p = 0; p < geometry_.partitions; ++p) {
        lock_partition(p);
        const Partition& part = partitions_[p];
        t.evictions += part.evictions;
        t.recoveries += part.retired_recoveries;
        const Entry* idx = index(p);
        for (std::uint32_t pos = 0; pos < geometry_.index_size; ++pos) {
            const std::uint64_t e = idx[pos].load(std::memory_order_relaxed);
            if (e == kEmpty) continue;
            const Slot& s = slots_[entry_id(e)];
            ++t.keys;
            t.recoveries += s.recoveries.load(std::memory_order_relaxed);
        }
        unlock_partition(p);
    }
    return t;
}

} // namespace forklock
