#pragma once
// SlotTable: the key -> Slot dictionary inside one memory region, shared or private.
//
// Layout: a header, P partitions (each its own lock and its own open-addressing index of slot
// numbers), a free pool, and `capacity` slots. A key's hash picks its partition, so unrelated keys
// rarely meet on one lock; keys are compared byte for byte after the hash.
//
// A slot stays bound to its key while idle, so its statistics survive between uses; when a new
// key needs a slot and the pool is empty, an idle slot (refs == 0) is taken back: first in the
// key's own partition, else in another. A partition holds at most partition_limit keys (about
// twice its share of the capacity). When every slot the key could use is held or waited on,
// acquire_ref() throws TableFullError.
//
// Crash safety: the partition and pool locks are robust mutexes in shared tables. A process killed
// inside one leaves EOWNERDEAD to the next locker, which rebuilds that partition's index (or the
// pool) from the slots' state words, the only thing written before anything points at a slot.
// What it cannot rebuild: the reference a killed *waiter* held stays counted, so that slot is
// never reused (a leak of one slot, never a merge of two keys). A killed *holder*'s reference is
// returned by whoever recovers its lock.

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

class SlotTable {
public:
    // Lays the table out in `memory` (zeroed, region_bytes() long) and initialises every lock.
    SlotTable(void* memory, const TableGeometry& geometry, MutexKind kind);

    const TableGeometry& geometry() const { return geometry_; }
    Slot& slot(std::uint32_t id) const { return slots_[id]; }

    // acquire_ref: the slot bound to `key`, binding one if needed, with one more reference.
    Slot& acquire_ref(std::string_view key);
    // release_ref: drops one reference; the slot may be reused for another key from then on.
    void release_ref(Slot& slot) noexcept;

    // for_each_bound: calls f(const Slot&) for every bound slot, holding its partition's lock (so
    // the key cannot change under f). f must not call back into the table.
    void for_each_bound(const std::function<void(const Slot&)>& f) const;

    TableStats stats() const;

private:
    struct Header;
    struct Partition;

    void lock_partition(std::uint32_t p) const;
    void unlock_partition(std::uint32_t p) const;
    using Entry = std::atomic<std::uint64_t>;
    Slot* find_optimistic(std::uint32_t p, std::string_view key, std::uint64_t hash,
                          std::uint32_t& seen);
    Slot* find(std::uint32_t p, std::string_view key, std::uint64_t hash) const;
    Slot* take_slot(std::uint32_t p);
    Slot* evict_idle(std::uint32_t p);
    void bind(Slot& s, std::uint32_t p, std::string_view key, std::uint64_t hash);
    void index_insert(std::uint32_t p, std::uint64_t hash, std::uint32_t id);
    void index_erase(std::uint32_t p, std::uint32_t pos);
    void repair_partition(std::uint32_t p) const;
    Slot* pool_pop(std::uint32_t p);
    void pool_push(Slot& s);
    void repair_pool();
    void steal_idle_slot(std::uint32_t except);
    void add_ref(Slot& s);
    Entry* index(std::uint32_t p) const;

    TableGeometry geometry_;
    Header* header_;
    Partition* partitions_;
    Entry* indexes_;
    std::uint32_t* pool_;
    Slot* slots_;
};

} // namespace forklock
