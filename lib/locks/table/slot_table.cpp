#include "locks/table/slot_table.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <new>

#include <sys/random.h>

#include <fmt/format.h>

#include <forklock/lock_errors.h>
#include "os/current_pid.h"
#include "os/os_error.h"

namespace forklock {

struct alignas(64) SlotTable::Header {
    pthread_mutex_t pool_lock;
    std::uint32_t pool_top;         // pool_[0..pool_top) are free slot ids
    std::uint32_t bound_high_water; // most slots ever out of the pool (under pool_lock)
    std::uint64_t seed;             // the hash's, written once by the creator
    alignas(64) std::atomic<std::uint64_t> full_errors;
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

namespace {

constexpr std::uint64_t kEmpty = 0;
constexpr std::uint64_t kNotMissed = ~std::uint64_t{0}; // never equal to a 32-bit change count
constexpr std::size_t kHeaderBytes = 256;               // room for SlotTable::Header
constexpr std::size_t kPartitionBytes = 128;            // one SlotTable::Partition, two cache lines

// An index entry: the hash's low 32 bits (home position and a cheap filter) and slot id + 1.
std::uint64_t make_entry(std::uint64_t hash, std::uint32_t id)
{
    return (hash & 0xffffffffu) << 32 | (std::uint64_t{id} + 1);
}
std::uint32_t entry_id(std::uint64_t e) { return static_cast<std::uint32_t>(e & 0xffffffffu) - 1; }
std::uint32_t entry_hash(std::uint64_t e) { return static_cast<std::uint32_t>(e >> 32); }

std::uint64_t hash_key(std::string_view key, std::uint64_t seed)
{
    // Eight bytes per multiply (a byte-at-a-time FNV was a fifth of a lock's cost on a short
    // key), then a murmur finaliser so both halves are well mixed (low half: home position and
    // tag, high half: partition).
    std::uint64_t h = (seed + 0x9e3779b97f4a7c15ull) ^ key.size();
    std::size_t i = 0;
    for (; i + 8 <= key.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, key.data() + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    if (const std::size_t rest = key.size() - i; rest != 0) {
        // The last 1..7 bytes without a variable-length memcpy (a libc call and a store-forwarding
        // stall that cost more than the rest of the hash). The length is already in h, so
        // overlapping reads still tell different keys of one length apart.
        const auto* b = reinterpret_cast<const unsigned char*>(key.data());
        std::uint64_t w;
        if (key.size() >= 8) {
            std::memcpy(&w, b + key.size() - 8, 8);
            w >>= 8 * (8 - rest);
        } else if (rest >= 4) {
            std::uint32_t lo, hi;
            std::memcpy(&lo, b, 4);
            std::memcpy(&hi, b + rest - 4, 4);
            w = std::uint64_t{hi} << 32 | lo;
        } else {
            w = std::uint64_t{b[0]} | std::uint64_t{b[rest / 2]} << 8 |
                std::uint64_t{b[rest - 1]} << 16;
        }
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

// The `n`th 8-byte word of `key` as the slot stores it: its bytes in memory order, the last word
// padded with zeros. (Not a memcpy of min(8, rest) bytes: a variable-length copy into a word
// and the load of that word stalled store forwarding, the costliest instruction of a miss.)
static_assert(std::endian::native == std::endian::little, "key words are assembled little-end");
std::uint64_t key_word(std::string_view key, std::size_t n)
{
    const std::size_t at = 8 * n;
    std::uint64_t w = 0;
    if (key.size() - at >= 8) {
        std::memcpy(&w, key.data() + at, 8);
        return w;
    }
    for (std::size_t i = 0; at + i < key.size(); ++i)
        w |= std::uint64_t{static_cast<unsigned char>(key[at + i])} << (8 * i);
    return w;
}

// store_key, key_matches: the two sides of the key's seqlock (Slot::key_words).
void store_key(Slot& s, std::string_view key)
{
    for (std::size_t n = 0; 8 * n < key.size(); ++n)
        std::atomic_ref(s.key_words[n]).store(key_word(key, n), std::memory_order_relaxed);
    std::atomic_ref(s.key_len).store(static_cast<std::uint32_t>(key.size()),
                                     std::memory_order_relaxed);
}

bool key_matches(Slot& s, std::string_view key)
{
    if (std::atomic_ref(s.key_len).load(std::memory_order_relaxed) != key.size()) return false;
    for (std::size_t n = 0; 8 * n < key.size(); ++n)
        if (std::atomic_ref(s.key_words[n]).load(std::memory_order_relaxed) != key_word(key, n))
            return false;
    return true;
}

// The word Slot::state holds: what the slot does, and for which partition.
std::uint32_t make_state(SlotState s, std::uint32_t partition)
{
    return static_cast<std::uint32_t>(s) << 24 | partition;
}

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

namespace {
std::uint32_t partition_of(std::uint64_t hash, const TableGeometry& g)
{
    return static_cast<std::uint32_t>((hash >> 32) & (g.partitions - 1));
}
} // namespace

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
