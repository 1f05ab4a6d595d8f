#include "locks/table/slot_table.h"

#include <algorithm>
#include <new>

#include <sys/random.h>

#include <fmt/format.h>

#include "os/current_pid.h"
#include "os/os_error.h"
#include <forklock/lock_errors.h>

#include "locks/table/slot_keys.h"
#include "locks/table/slot_layout.h"

namespace forklock {

using namespace slot_detail;

namespace {

std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

std::uint64_t random_seed()
{
    std::uint64_t seed = SlotTable::kRandomSeed;
    while (seed == SlotTable::kRandomSeed) {
        const ssize_t got = ::getrandom(&seed, sizeof seed, 0);
        if (got < 0 && errno != EINTR) throw os_error(errno, "getrandom(8 bytes, 0)");
    }
    return seed;
}

} // namespace

void SlotTable::raise_token_floor(std::uint64_t floor) noexcept
{
    std::uint64_t seen = header_->token_floor.load(std::memory_order_relaxed);
    while (seen < floor &&
           !header_->token_floor.compare_exchange_weak(seen, floor, std::memory_order_relaxed)) {}
}

std::uint64_t SlotTable::token_floor() const noexcept
{
    return header_->token_floor.load(std::memory_order_relaxed);
}

TableGeometry TableGeometry::for_capacity(std::size_t capacity)
{
    TableGeometry g{};
    g.capacity = static_cast<std::uint32_t>(capacity);
    g.partitions = std::clamp<std::uint32_t>(std::bit_floor(g.capacity / 64 + 1), 1, 64);
    const std::uint32_t share = (g.capacity + g.partitions - 1) / g.partitions;
    g.partition_limit = g.partitions == 1 ? g.capacity : std::min(g.capacity, 2 * share);
    g.index_size = std::bit_ceil(std::max<std::uint32_t>(2 * g.partition_limit, 8));
    return g;
}

namespace {
struct Offsets {
    std::size_t partitions, indexes, pool, slots, total;
};
Offsets offsets_of(const TableGeometry& g, std::size_t header, std::size_t partition)
{
    Offsets o{};
    o.partitions = align_up(header, 64);
    o.indexes = align_up(o.partitions + partition * g.partitions, 64);
    o.pool = align_up(o.indexes + sizeof(std::uint64_t) * g.index_size * g.partitions, 64);
    o.slots = align_up(o.pool + sizeof(std::uint32_t) * g.capacity, 64);
    o.total = o.slots + sizeof(Slot) * g.capacity;
    return o;
}
} // namespace

std::size_t TableGeometry::region_bytes() const
{
    return offsets_of(*this, kHeaderBytes, kPartitionBytes).total;
}

SlotTable::SlotTable(void* memory, const TableGeometry& g, MutexKind kind, SlotLocks& locks,
                     std::uint64_t seed)
    : geometry_(g), seed_(seed == kRandomSeed ? random_seed() : seed), locks_(locks),
      by_lock_(locks.pinned_by_lock())
{
    static_assert(sizeof(Header) <= kHeaderBytes && sizeof(Partition) <= kPartitionBytes);
    const Offsets o = offsets_of(g, kHeaderBytes, kPartitionBytes);
    auto* base = static_cast<char*>(memory);
    header_ = new (base) Header{};
    header_->seed = seed_;
    partitions_ = reinterpret_cast<Partition*>(base + o.partitions);
    indexes_ = reinterpret_cast<Entry*>(base + o.indexes);
    for (std::size_t i = 0; i < std::size_t{g.index_size} * g.partitions; ++i)
        new (&indexes_[i]) Entry{kEmpty};
    pool_ = reinterpret_cast<std::uint32_t*>(base + o.pool);
    slots_ = reinterpret_cast<Slot*>(base + o.slots);

    init_mutex(&header_->pool_lock, kind);
    for (std::uint32_t p = 0; p < g.partitions; ++p) {
        new (&partitions_[p]) Partition{};
    }
    for (std::uint32_t i = 0; i < g.capacity; ++i) {
        Slot* s = new (&slots_[i]) Slot{};
        s->generation.store(1, std::memory_order_relaxed); // odd: in the pool
        init_mutex(&s->mutex, kind);
        pool_[i] = g.capacity - 1 - i; // pop hands out slot 0 first
    }
    header_->pool_top = g.capacity;
}

SlotTable::SlotTable(Attach, void* memory, const TableGeometry& g, SlotLocks& locks)
    : geometry_(g), locks_(locks), by_lock_(locks.pinned_by_lock())
{
    const Offsets o = offsets_of(g, kHeaderBytes, kPartitionBytes);
    auto* base = static_cast<char*>(memory);
    header_ = reinterpret_cast<Header*>(base);
    seed_ = header_->seed;
    partitions_ = reinterpret_cast<Partition*>(base + o.partitions);
    indexes_ = reinterpret_cast<Entry*>(base + o.indexes);
    pool_ = reinterpret_cast<std::uint32_t*>(base + o.pool);
    slots_ = reinterpret_cast<Slot*>(base + o.slots);
}

void SlotTable::lock_partition(std::uint32_t p) const
{
    if (partitions_[p].lock.lock(current_pid()) == MutexResult::owner_died) repair_partition(p);
}

void SlotTable::unlock_partition(std::uint32_t p) const { partitions_[p].lock.unlock(); }

std::uint32_t SlotTable::partition_for(std::string_view key) const
{
    return partition_of(hash_key(key, seed_), geometry_);
}

SlotRef SlotTable::lookup(std::string_view key)
{
    const std::uint64_t h = hash_key(key, seed_);
    const std::uint32_t p = partition_of(h, geometry_);
    const std::uint32_t seen = partitions_[p].changes.load(std::memory_order_acquire);
    bool sure = true;
    if (SlotRef r = find(p, key, h, sure); r.slot) return r;
    return find_or_bind(key, h, false, sure ? seen : kNotMissed);
}

bool SlotTable::still_bound(const SlotRef& ref) noexcept
{
    // By reference, seq_cst pairs with the evictor's seq_cst store of an odd generation (see
    // claim_if_idle). By lock, the slot's lock already orders us after any rebinding.
    return ref.slot->generation.load(std::memory_order_seq_cst) == ref.generation;
}

Slot& SlotTable::acquire_ref(std::string_view key)
{
    const std::uint64_t h = hash_key(key, seed_);
    const std::uint32_t p = partition_of(h, geometry_);
    const std::uint32_t seen = partitions_[p].changes.load(std::memory_order_acquire);
    bool sure = true;
    SlotRef r = find(p, key, h, sure);
    if (!r.slot) return *find_or_bind(key, h, true, sure ? seen : kNotMissed).slot;
    // Count ourselves, then check the slot was not claimed meanwhile: the evictor makes the
    // generation odd before it reads refs (both seq_cst), so one of us sees the other.
    r.slot->refs.fetch_add(1, std::memory_order_seq_cst);
    if (still_bound(r)) return *r.slot;
    release_ref(*r.slot);
    return *find_or_bind(key, h, true, kNotMissed).slot;
}

void SlotTable::release_ref(Slot& s) noexcept { s.refs.fetch_sub(1, std::memory_order_acq_rel); }

// find_or_bind: the miss path, under the partition lock. `missed_at`: the partition's change count
// read before a lockless probe that surely missed (it met no key being rebound), or kNotMissed.
// (A plain integer: an std::optional here cost a store-forwarding stall on every miss.)
SlotRef SlotTable::find_or_bind(std::string_view key, std::uint64_t h, bool add_reference,
                                std::uint64_t missed_at)
{
    const std::uint32_t p = partition_of(h, geometry_);
    Partition& part = partitions_[p];
    for (int attempt = 0; attempt < 2; ++attempt) {
        lock_partition(p);
        SlotRef r;
        bool sure = true;
        if (part.changes.load(std::memory_order_relaxed) != missed_at) r = find(p, key, h, sure);
        missed_at = kNotMissed;
        if (!r.slot) {
            bool held = false;
            if (Slot* s = take_slot(p, held)) {
                if (!held && by_lock_)
                    held = locks_.claim(*s); // from the pool: nobody can be after its key yet
                bind(*s, p, key, h, held);
                r = {s, s->generation.load(std::memory_order_relaxed), held};
            }
        }
        if (r.slot) {
            // Relaxed: an evictor reads refs only under this partition's lock.
            if (add_reference) r.slot->refs.fetch_add(1, std::memory_order_relaxed);
            unlock_partition(p);
            return r;
        }
        const bool partition_full = part.bound >= geometry_.partition_limit;
        unlock_partition(p);
        if (partition_full) break;
        steal_idle_slot(p); // drops into the pool, for the second attempt
    }
    header_->full_errors.fetch_add(1, std::memory_order_relaxed);
    throw TableFullError(
        fmt::format("lock table full: all {} slots (or the {} of key '{}''s partition) are in use",
                    geometry_.capacity, geometry_.partition_limit, key));
}

// find: runs without the partition lock on the hit path, so every index read is atomic and the
// probe is bounded even while entries move. A probe that misses while entries move is retried
// under the lock; a hit is only as good as its generation, which the caller checks again later.
// `sure` turns false if the probe skipped a slot being rebound, which might have been the key's.
SlotRef SlotTable::find(std::uint32_t p, std::string_view key, std::uint64_t hash, bool& sure) const
{
    const Entry* idx = index(p);
    const std::uint32_t mask = geometry_.index_size - 1;
    const auto tag = static_cast<std::uint32_t>(hash);
    std::uint32_t pos = tag & mask;
    for (std::uint32_t n = 0; n <= mask; ++n, pos = (pos + 1) & mask) {
        const std::uint64_t e = idx[pos].load(std::memory_order_acquire);
        if (e == kEmpty) return {};
        if (entry_hash(e) != tag) continue;
        Slot& s = slots_[entry_id(e)];
        const std::uint32_t g = s.generation.load(std::memory_order_acquire);
        if (g & 1) {
            sure = false; // being evicted: a miss, retried under the lock
            continue;
        }
        if (key_matches(s, key)) {
            // The key was read under generation g: keep those reads before the caller's re-check.
            std::atomic_thread_fence(std::memory_order_acquire);
            return {&s, g};
        }
    }
    return {};
}

// take_slot, evict_idle: under the partition lock. `claimed`: the slot came from evict_idle, so
// by lock its lock is held.
Slot* SlotTable::take_slot(std::uint32_t p, bool& claimed)
{
    // Once the table has filled, every new key is bound by eviction: don't take the pool lock
    // just to find it empty. (A racy read: a stale non-zero only costs the lock.)
    const bool pool_empty =
        std::atomic_ref<std::uint32_t>(header_->pool_top).load(std::memory_order_relaxed) == 0;
    if (!pool_empty && partitions_[p].bound < geometry_.partition_limit)
        if (Slot* s = pool_pop(p)) return s;
    Slot* s = evict_idle(p);
    claimed = s && by_lock_;
    return s;
}

void SlotTable::bind(Slot& s, std::uint32_t p, std::string_view key, std::uint64_t hash, bool held)
{
    // The slot is claimed by p (generation odd) and in no index: a reader that still reaches it
    // through an old index entry skips it, or fails its generation check.
    s.hash = hash;
    store_key(s, key);
    s.acquisitions.store(0, std::memory_order_relaxed);
    s.contended.store(0, std::memory_order_relaxed);
    s.wait_ns_total.store(0, std::memory_order_relaxed);
    s.wait_ns_max.store(0, std::memory_order_relaxed);
    s.recoveries.store(0, std::memory_order_relaxed);
    s.last_dead_owner.store(0, std::memory_order_relaxed);
    s.pending_recovery.store(0, std::memory_order_relaxed);
    s.fence.store(header_->token_floor.load(std::memory_order_relaxed), std::memory_order_relaxed);
    s.grant.store(0, std::memory_order_relaxed);
    s.lease_takeovers.store(0, std::memory_order_relaxed);
    s.state.store(make_state(SlotState::bound, p), std::memory_order_release);
    // The caller's lock from here: a crash before this leaves a claim for clear_dead_claim, a crash
    // after it a holder for the supervisor.
    if (held) locks_.hand_over(s);
    s.generation.store(s.generation.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    index_insert(p, hash, static_cast<std::uint32_t>(&s - slots_));
}

void SlotTable::index_insert(std::uint32_t p, std::uint64_t hash, std::uint32_t id)
{
    Entry* idx = index(p);
    const std::uint32_t mask = geometry_.index_size - 1;
    std::uint32_t pos = static_cast<std::uint32_t>(hash) & mask;
    while (idx[pos].load(std::memory_order_relaxed) != kEmpty) pos = (pos + 1) & mask;
    idx[pos].store(make_entry(hash, id), std::memory_order_release);
    Partition& part = partitions_[p];
    ++part.bound;
    part.changes.store(part.changes.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

// Backward-shift deletion: linear probing stays tombstone-free, so lookups never slow down with
// churn (100,000 distinct keys cost what 1 does).
void SlotTable::index_erase(std::uint32_t p, std::uint32_t hole)
{
    Entry* idx = index(p);
    const std::uint32_t mask = geometry_.index_size - 1;
    for (std::uint32_t j = (hole + 1) & mask;; j = (j + 1) & mask) {
        const std::uint64_t e = idx[j].load(std::memory_order_relaxed);
        if (e == kEmpty) break;
        const std::uint32_t home = entry_hash(e) & mask;
        // Move j back into the hole unless its home lies cyclically in (hole, j].
        const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            idx[hole].store(e, std::memory_order_relaxed);
            hole = j;
        }
    }
    idx[hole].store(kEmpty, std::memory_order_release);
    Partition& part = partitions_[p];
    --part.bound;
    part.changes.store(part.changes.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

} // namespace forklock
