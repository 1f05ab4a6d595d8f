#pragma once
// SlotTable: the key -> Slot dictionary inside one memory region, shared or private.
//
// Layout: a header, P partitions (each with its own lock and open-addressing index), a free pool
// and `capacity` slots. A key's hash picks its partition; keys are compared byte for byte. The
// hash is seeded per table (a random 64-bit seed kept in the shared header, read once by each
// process that maps it), so a client cannot pick keys that all land in one partition and fill it
// while the table stays mostly empty. The hash is a fast mixer, not a cryptographic MAC: the seed
// keeps keys from being aimed, it does not make collisions impossible to search for with timing.
// Shared across processes: yes, when the region is MAP_SHARED and inherited; across threads: yes.
// Every member may be called concurrently; the hit path (a key already bound) takes no lock.
//
// Capacity: a slot stays bound to its key while idle (its statistics survive); a new key takes a
// slot from the pool, else evicts an idle slot of its own partition, else of another. A partition
// holds at most partition_limit keys (about twice its share), so lookup() and acquire_ref() can
// throw TableFullError while fewer than `capacity` keys are in use.
//
// Pinning: what keeps a slot bound to its key while a caller uses it. Fixed per table by
// SlotLocks::pinned_by_lock(); the slot's `generation` is even while bound, odd while claimed.
//  - By lock: lookup() returns the slot and the generation read before the key compare, and pins
//    nothing. The caller takes the slot's own lock, then asks still_bound(); if false it unlocks
//    and looks up again. The evictor claims a slot by taking its lock without waiting
//    (SlotLocks::claim) before it makes the generation odd, so either the caller's lock came
//    first (the claim fails) or the caller sees the new generation. A slot bound by this lookup
//    comes back with its lock already handed to the caller (SlotRef::held).
//    Waiters pin nothing: a waiter must recheck still_bound() (or the generation) between
//    bounded sleeps, or it may wait on another key's holder.
//  - By reference: acquire_ref() counts the caller in `refs`, release_ref() uncounts it; the
//    evictor takes only a slot with no reference.
//
// Owner death: a partition's lock is a PidSpinLock (one compare-and-swap and one store: the miss
// path's cheapest lock), the pool's a robust mutex in shared tables. A process killed inside a
// partition leaves it locked until its pid is reaped; then the next locker (or a waiter) takes
// the lock over, rebuilds that partition's index from the slots' state words and asks
// SlotLocks::clear_dead_claim to free a slot lock the dead evictor had claimed. A pool lock's
// holder killed inside is repaired by its next locker (EOWNERDEAD) from the same state words. By reference, a dead process's references stay counted (its slots are not reused,
// keys never merged) until returned: a holder's by whoever recovers its key, a waiter's by the
// caller that knows what it waited on (LockTable::release_owned_by). A process killed between
// acquire_ref() and recording itself as holder or waiter leaves a reference nobody returns: that
// slot is never reused (one slot of capacity lost, an `active` key nobody holds).
//
// Fencing tokens: a slot keeps the last token its key was granted (Slot::fence); bind() starts a
// new key at the table's token floor, and eviction raises that floor to the evicted key's last
// token (both under the key's partition lock), so a key's tokens never go back, evicted or not.
//
// Invalid: keys longer than kSlotKeyBytes; release_ref() without a matching acquire_ref();
// calling back into the table from a for_each_bound()/visit_bound() callback.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include <forklock/lock_stats.h>
#include "locks/primitives/pid_spin_lock.h"
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
    // `seed`: the hash's seed, kRandomSeed for one from getrandom(2) (std::system_error if that
    // fails); a fixed seed is for tests.
    static constexpr std::uint64_t kRandomSeed = 0;
    SlotTable(void* memory, const TableGeometry& geometry, MutexKind kind, SlotLocks& locks,
              std::uint64_t seed = kRandomSeed);
    // Attaches to a table another process laid out in `memory` with the same geometry (a named
    // table, named_table.h): initialises nothing, reads the seed from its header.
    struct Attach {};
    static constexpr Attach kAttach{};
    SlotTable(Attach, void* memory, const TableGeometry& geometry, SlotLocks& locks);

    const TableGeometry& geometry() const { return geometry_; }
    std::uint64_t seed() const { return seed_; }
    // partition_for: the partition `key` lives in under this table's seed.
    std::uint32_t partition_for(std::string_view key) const;
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
    // partition's lock; binds nothing. True if a slot was bound. f must not call back into the
    // table.
    bool visit_bound(std::string_view key, const std::function<void(const Slot&)>& f) const;

    // Fencing tokens (Slot::fence). raise_token_floor: every key bound from now on has its tokens
    // above `floor` (a restart's seed; a joined table keeps the higher of the two).
    void raise_token_floor(std::uint64_t floor) noexcept;
    std::uint64_t token_floor() const noexcept;

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
    std::uint64_t seed_; // the header's, copied: the hit path reads no shared line for it
    SlotLocks& locks_;
    const bool by_lock_; // locks_.pinned_by_lock(), fixed for the table's lifetime
    Header* header_;
    Partition* partitions_;
    Entry* indexes_;
    std::uint32_t* pool_;
    Slot* slots_;
};

} // namespace forklock
