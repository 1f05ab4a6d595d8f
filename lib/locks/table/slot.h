#pragma once
// Slot: one key's lock and statistics, as it lies in the table's memory (shared or private).
//
// Standard-layout and pointer-free, so the same bytes mean the same thing in every process that
// maps them. A slot is initialised once when the table is created and never re-initialised: it is
// reused for another key by rewriting its key only (see slot_table.h), so a mutex or semaphore
// word is never destroyed while someone may be blocked on it.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <pthread.h>
#include <string_view>
#include <type_traits>

#include "locks/primitives/owner_word_lock.h"

namespace forklock {

inline constexpr std::size_t kSlotKeyBytes = 128;

// Slot::state: what the slot is doing, and for which partition, in one word so a repair after a
// crash can read both at once (the table writes it: slot_table.cpp).
enum class SlotState : std::uint32_t { free = 0, claimed = 1, bound = 2 };

inline SlotState state_kind(std::uint32_t word) { return static_cast<SlotState>(word >> 24); }
inline std::uint32_t state_partition(std::uint32_t word) { return word & 0xffffff; }

// Laid out by use: line 0 holds what every lock and unlock touches (semaphore mode touches nothing
// else but the key), line 1 the mutex and the rarer statistics, line 2 what only a contended or
// leased acquisition touches, lines 3-4 the key, of which a short key uses only the first.
struct alignas(64) Slot {
    // Bookkeeping, written under the partition lock (refs: see slot_table.h).
    std::atomic<std::uint32_t> state;
    // generation: a per-slot seqlock over the key. Even while the slot is bound to one key; odd
    // while it is claimed (being evicted, in the pool, being bound). A caller that read generation
    // g before comparing the key, and reads g again after taking the slot's lock, held the lock of
    // that key (see slot_table.h).
    std::atomic<std::uint32_t> generation;
    std::atomic<std::uint32_t> refs; // by-reference pinning only (none, flock): idle at 0
    std::uint32_t key_len;
    std::uint64_t hash;

    // The lock itself: `word` in semaphore mode, `mutex` (line 1) in thread and mutex modes.
    OwnerWord word;
    std::atomic<std::int32_t> owner_pid;        // holder (thread, mutex, flock); 0 when free
    std::atomic<std::int32_t> pending_recovery; // dead pid a supervisor recovered this key from

    // Statistics: written by the holder (so plain load+store), read by anyone. (Who waits is kept
    // apart, in the table's WaitRegistry.)
    std::atomic<std::uint64_t> acquisitions;
    // fence: the last fencing token a grant of this key was given (lock_table.h), bumped by the
    // holder; set to the table's token floor when the slot is bound, which eviction raises to it.
    std::atomic<std::uint64_t> fence;
    // grant: the token of the leased grant that holds the key now, 0 if none (semaphore mode with
    // a lease: the one word a holder's unlock and a taker's take-over race on, by CAS).
    std::atomic<std::uint64_t> grant;

    pthread_mutex_t mutex;
    std::atomic<std::uint64_t> wait_ns_max;
    std::atomic<std::uint64_t> recoveries;
    std::atomic<std::int32_t> last_dead_owner;

    // The slow path's: statistics of a contended acquisition, and a leased grant's deadline
    // (CLOCK_MONOTONIC ns, written before `grant`, read after it).
    alignas(64) std::atomic<std::uint64_t> contended;
    std::atomic<std::uint64_t> wait_ns_total;
    std::atomic<std::int64_t> lease_deadline;
    std::atomic<std::uint64_t> lease_takeovers; // grants taken from a holder whose lease was past

    // The key, as 8-byte words: lockless readers (SlotTable::find) compare it while an evictor
    // may rewrite it, a seqlock that the generation validates afterwards, so both sides access
    // the words and key_len through relaxed std::atomic_ref: the same plain moves, and no data
    // race. The last word is padded with zeros, so whole words compare.
    alignas(64) std::uint64_t key_words[kSlotKeyBytes / sizeof(std::uint64_t)];

    // key_view: for readers that hold the partition lock or pin the slot (the key can't change).
    std::string_view key_view() const
    {
        return {reinterpret_cast<const char*>(key_words), key_len};
    }
};

static_assert(std::is_standard_layout_v<Slot>);
static_assert(offsetof(Slot, fence) < 64 && offsetof(Slot, grant) < 64, "fence on line 0");
static_assert(offsetof(Slot, key_words) == 192 && sizeof(Slot) == 320,
              "five cache lines, key last");
static_assert(kSlotKeyBytes % sizeof(std::uint64_t) == 0);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// Holder-only counter bump: the key's lock orders the writers, so no locked instruction is needed.
inline void bump(std::atomic<std::uint64_t>& a, std::uint64_t by = 1)
{
    a.store(a.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

} // namespace forklock
