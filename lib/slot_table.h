#pragma once
// SlotTable: the key -> Slot dictionary inside one memory region, shared or private.
//
// Layout: a header, P partitions (each its own lock and its own open-addressing index of slot
// numbers), a free pool, and `capacity` slots. A key's hash picks its partition, so unrelated keys
// rarely meet on one lock; keys are compared byte for byte after the hash.
//
// A slot stays bound to its key while idle, so its statistics survive between uses; when a new
// key needs a slot and the pool is empty, an idle slot is taken back: first in the key's own
// partition, else in another. A partition holds at most partition_limit keys (about twice its
// share of the capacity). When every slot the key could use is in use, lookup() and acquire_ref()
// throw TableFullError.
//
// Pinning: what stops a slot from being rebound to another key while a caller uses it. The hit
// path takes no table lock, so this is a protocol between the caller and the evictor around the
// slot's `generation` (even: bound; odd: claimed):
//  - by lock (thread, mutex, semaphore): lookup() returns the slot and the generation it read
//    before comparing the key; the caller takes the slot's own lock and then checks
//    still_bound(). The evictor makes the generation odd *before* asking hooks.idle whether the
//    lock is free, and an acquisition either happens before that question (the evictor sees it
//    held and leaves the slot alone) or after it (the caller sees the odd or newer generation,
//    unlocks and looks up again). No shared counter is touched on the hit path.
//  - by reference (none, flock, whose lock is not in the slot): acquire_ref() counts the caller in
//    `refs`, release_ref() uncounts it; hooks.idle checks refs == 0. The same generation check
//    orders the count against the evictor.
// Waiters do not pin a slot in by-lock mode: if their key's slot is rebound while they sleep,
// they find out when they get the lock, and look up again.
//
// Crash safety: the partition and pool locks are robust mutexes in shared tables. A process killed
// inside one leaves EOWNERDEAD to the next locker, which rebuilds that partition's index (or the
// pool) from the slots' state words, the only thing written before anything points at a slot.
// By reference, a killed *waiter*'s reference stays counted, so that slot is never reused (a leak
// of one slot, never a merge of two keys); a killed holder's is returned by whoever recovers it.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "lock_stats.h"
#include "pthread_mutex.h"
#include "slot.h"

namespace forklock {

struct TableGeometry {
    std::uint32_t capacity;
    std::uint32_t partitions;
    std::uint32_t partition_limit;
    std::uint32_t index_size; // per partition, a power of two >= 2 * partition_limit

    static TableGeometry for_capacity(std::size_t capacity);
    std::size_t region_bytes() const;
};

// What the table asks its owner, who knows which lock a slot carries.
struct SlotHooks {
    // idle: may this slot be rebound to another key? Called under the partition lock with the
    // slot's generation already odd. By lock: true only if the slot's lock was free (taking and
    // releasing it, or an atomic read that pairs with a seq_cst acquiring CAS).
    std::function<bool(Slot&)> idle;
};

// A slot as a by-lock caller found it: valid while slot->generation still equals `generation`.
struct SlotRef {
    Slot* slot = nullptr;
    std::uint32_t generation = 0;
};

class SlotTable {
public:
    // Lays the table out in `memory` (zeroed, region_bytes() long) and initialises every lock.
    SlotTable(void* memory, const TableGeometry& geometry, MutexKind kind, SlotHooks hooks);

    const TableGeometry& geometry() const { return geometry_; }
    Slot& slot(std::uint32_t id) const { return slots_[id]; }

    // By lock. lookup: the slot bound to `key` (binding one if needed), pinning nothing.
    SlotRef lookup(std::string_view key);
    // still_bound: after taking ref.slot's lock, whether it is still the lock of the looked-up key.
    static bool still_bound(const SlotRef& ref) noexcept;

    // By reference. acquire_ref: the slot bound to `key`, binding one if needed, with one more
    // reference. release_ref: drops it; the slot may be reused for another key from then on.
    Slot& acquire_ref(std::string_view key);
    void release_ref(Slot& slot) noexcept;

    // for_each_bound: calls f(const Slot&) for every bound slot, holding its partition's lock (so
    // the key cannot change under f). f must not call back into the table.
    void for_each_bound(const std::function<void(const Slot&)>& f) const;

    // stats: everything but `active` and `shared`, which only the table's owner can tell.
    TableStats stats() const;

private:
    struct Header;
    struct Partition;

    void lock_partition(std::uint32_t p) const;
    void unlock_partition(std::uint32_t p) const;
    using Entry = std::atomic<std::uint64_t>;
    SlotRef find(std::uint32_t p, std::string_view key, std::uint64_t hash) const;
    SlotRef find_or_bind(std::string_view key, std::uint64_t hash, bool add_reference);
    Slot* take_slot(std::uint32_t p);
    Slot* evict_idle(std::uint32_t p);
    bool claim_if_idle(Slot& s);
    void bind(Slot& s, std::uint32_t p, std::string_view key, std::uint64_t hash);
    void index_insert(std::uint32_t p, std::uint64_t hash, std::uint32_t id);
    void index_erase(std::uint32_t p, std::uint32_t pos);
    void repair_partition(std::uint32_t p) const;
    Slot* pool_pop(std::uint32_t p);
    void pool_push(Slot& s);
    void repair_pool();
    void steal_idle_slot(std::uint32_t except);
    Entry* index(std::uint32_t p) const;

    TableGeometry geometry_;
    SlotHooks hooks_;
    Header* header_;
    Partition* partitions_;
    Entry* indexes_;
    std::uint32_t* pool_;
    Slot* slots_;
};

} // namespace forklock
