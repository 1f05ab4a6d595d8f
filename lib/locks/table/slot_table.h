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
//    still_bound(). The evictor claims a slot by taking its lock without waiting, and only then
//    makes the generation odd. So an acquisition either came first (the claim fails and the slot
//    stays) or comes after the lock is let go again, and then sees the new generation (the caller
//    unlocks and looks up again). No shared counter is touched on the hit path.
//    The evictor keeps the lock it claimed (a slot from the free pool is claimed the same way):
//    the slot, bound to its new key, goes back to the caller who missed with the lock already
//    held (SlotRef::held). That saves the caller a lock and the evictor an unlock on every miss,
//    and no one can take the new key between its binding and its first holder.
//  - by reference (none, flock, whose lock is not in the slot): acquire_ref() counts the caller in
//    `refs`, release_ref() uncounts it. The evictor makes the generation odd *before* it reads
//    refs (both seq_cst), and the caller counts itself before it checks the generation, so one of
//    them sees the other.
// Waiters do not pin a slot in by-lock mode: if their key's slot is rebound while they sleep,
// they find out within one slice of their sleep (LockTable's waiters sleep in 20 ms slices and
// compare the generation between them), or when they get the lock, and look up again.
//
// Crash safety: the partition and pool locks are robust mutexes in shared tables. A process killed
// inside one leaves EOWNERDEAD to the next locker, which rebuilds that partition's index (or the
// pool) from the slots' state words, the only thing written before anything points at a slot,
// and asks SlotLocks::clear_dead_claim to free any slot lock the dead evictor had claimed.
// By reference, a killed process's references stay counted (so its slots are not reused, never
// two keys merged) until they are returned: a holder's by whoever recovers its key, a waiter's by
// LockTable::release_owned_by, which knows from the WaitRegistry what the dead process waited on.
// A process killed between counting its reference and recording itself as holder or waiter is
// neither: its reference stays, and that one slot is never reused (one slot of capacity lost,
// shown as an `active` key nobody holds). flock keeps that window to a few instructions: the file
// lock is taken before the pin and let go after the unpin, so no syscall lies inside it. Closing
// it would need every pin recorded with its pid, and counted, under the partition lock.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "locks/lock_stats.h"
#include "locks/primitives/pthread_mutex.h"
#include "locks/table/slot.h"

namespace forklock {

struct TableGeometry {
    std::uint32_t capacity;
    std::uint32_t partitions;
    std::uint32_t partition_limit;
    std::uint32_t index_size; // per partition, a power of two >= 2 * partition_limit

    static TableGeometry for_capacity(std::size_t capacity);
    std::size_t region_bytes() const;
};

// SlotLocks: what the table asks its owner, who knows which lock a slot carries. Every call is
// made under the lock of the slot's partition (pinning and crash safety: see above).
class SlotLocks {
public:
    // Fixed for the table's lifetime: pinned by the slot's own lock, or by a reference count.
    virtual bool pinned_by_lock() const = 0;
    // claim: may this slot be taken for another key? By lock: takes the slot's lock without
    // waiting and keeps it (true), or finds it held (false). By reference: asked with the
    // generation already odd; true if no reference is counted.
    virtual bool claim(Slot& s) = 0;
    // By lock only. hand_over: the claimed lock becomes the calling thread's own, as if it had
    // locked the key (called before the slot's new key is published). unclaim: lets it go (a slot
    // evicted into the free pool).
    virtual void hand_over(Slot& s) = 0;
    virtual void unclaim(Slot& s) noexcept = 0;
    // clear_dead_claim: a process died holding the lock of this slot's partition; if it had
    // claimed the slot's lock, free it (a lock held by a real holder stays as it is).
    virtual void clear_dead_claim(Slot& s) = 0;

protected:
    ~SlotLocks() = default;
};

// A slot as a by-lock caller found it: valid while slot->generation still equals `generation`.
struct SlotRef {
    Slot* slot = nullptr;
    std::uint32_t generation = 0;
    bool held = false; // bound for this caller, its lock already taken (by lock only)
};

class SlotTable {
public:
    // Lays the table out in `memory` (zeroed, region_bytes() long) and initialises every lock.
    SlotTable(void* memory, const TableGeometry& geometry, MutexKind kind, SlotLocks& locks);

    const TableGeometry& geometry() const { return geometry_; }
    Slot& slot(std::uint32_t id) const { return slots_[id]; }

    // By lock. lookup: the slot bound to `key` (binding one if needed). Pins nothing, unless it
    // bound the slot for this call: then ref.held, and the caller holds the key's lock.
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
    // visit_bound: calls f(const Slot&) for the slot bound to `key`, if any, holding that one
    // partition's lock; binds nothing. True if a slot was bound. f must not call back into the table.
    bool visit_bound(std::string_view key, const std::function<void(const Slot&)>& f) const;

    // stats: everything but `active` and `shared`, which only the table's owner can tell.
    TableStats stats() const;

private:
    struct Header;
    struct Partition;

    void lock_partition(std::uint32_t p) const;
    void unlock_partition(std::uint32_t p) const;
    using Entry = std::atomic<std::uint64_t>;
    SlotRef find(std::uint32_t p, std::string_view key, std::uint64_t hash, bool& sure) const;
    SlotRef find_or_bind(std::string_view key, std::uint64_t hash, bool add_reference,
                         std::uint64_t missed_at);
    Slot* take_slot(std::uint32_t p, bool& claimed);
    Slot* evict_idle(std::uint32_t p);
    bool claim_if_idle(Slot& s);
    void bind(Slot& s, std::uint32_t p, std::string_view key, std::uint64_t hash, bool held);
    void index_insert(std::uint32_t p, std::uint64_t hash, std::uint32_t id);
    void index_erase(std::uint32_t p, std::uint32_t pos);
    void repair_partition(std::uint32_t p) const;
    Slot* pool_pop(std::uint32_t p);
    void pool_push(Slot& s);
    void repair_pool();
    void steal_idle_slot(std::uint32_t except);
    Entry* index(std::uint32_t p) const { return indexes_ + std::size_t{p} * geometry_.index_size; }

    TableGeometry geometry_;
    SlotLocks& locks_;
    const bool by_lock_; // locks_.pinned_by_lock(), asked once: every miss needs it, some twice
    Header* header_;
    Partition* partitions_;
    Entry* indexes_;
    std::uint32_t* pool_;
    Slot* slots_;
};

} // namespace forklock
