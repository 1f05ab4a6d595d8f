#pragma once
// What a lock mode class is: the part of LockTable that knows which lock a slot carries. One class
// per LockMode, each in lib/locks/modes/<name>_mode.h with its contract; TableImpl<Mode>
// (lock_table.cpp) runs the table around it and calls it directly (its calls inline), so no mode is
// ever asked for by name. The interface is the concept LockModeClass below; ModeBase holds the
// defaults, which describe the simplest mode: slots pinned by reference, in shared memory, no
// handle kept, no work before the pin. A mode states only where it differs.
//
// Every member may be called from any thread of any process sharing the table; take() is the only
// one that blocks.

#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "locks/table/slot_table.h"
#include "locks/table/wait_registry.h"
#include "os/current_pid.h"
#include "os/memory_region.h"
#include "os/monotonic_clock.h"
#include "os/unique_fd.h"
#include <forklock/lock_options.h>
#include <forklock/lock_stats.h>

namespace forklock {

// An absolute CLOCK_MONOTONIC deadline in ns; nullopt waits for ever.
using Deadline = std::optional<std::int64_t>;

struct NoHandle {};
struct NoEarly {};
// Lease: a key held through a session that can end under its holder: the number of that session
// (never 0, never reused in the process), kept by the KeyGuard.
struct Lease {
    std::uint64_t session = 0;
};

// A held key's handle as the KeyGuard keeps it: one word (the flock mode's fd, the lease's
// session, 0), turned back into the Handle when the guard lets go.
inline std::uint64_t to_token(NoHandle&&) noexcept { return 0; }
inline std::uint64_t to_token(UniqueFd&& fd) noexcept
{
    return static_cast<std::uint64_t>(fd.release());
}
inline std::uint64_t to_token(Lease&& lease) noexcept { return lease.session; }
template <typename Handle>
Handle from_token(std::uint64_t token) noexcept
{
    if constexpr (std::is_same_v<Handle, UniqueFd>)
        return UniqueFd(static_cast<int>(token));
    else if constexpr (std::is_same_v<Handle, Lease>)
        return Lease{token};
    else
        return Handle{};
}

// The outcome of take(): whether the lock was taken, whether it had to wait (and how long), and
// the dead holder it was recovered from.
template <typename Handle>
struct Taken {
    bool ok = false;
    bool blocked = false;
    pid_t recovered_from = 0;
    std::int64_t waited_ns = 0;
    std::uint64_t fence = 0; // a fencing token the mode issued itself (redis: INCR), or 0
    Handle handle{};
};

// The tables' parts a mode works on. The references are bound before the parts are built (the
// SlotTable needs the mode first), so a mode must not touch them in its constructor.
struct ModeParts {
    const LockTableOptions& options;
    SlotTable& slots;
    WaitRegistry& waits;
    bool attach = false;  // a named table another process made: open its semaphores, create none
    bool by_lock = false; // the mode's kPinnedByLock, which TableImpl passes on
};

class ModeBase : public SlotLocks {
public:
    // The defaults. Pinned by reference (slot_table.h): a slot is idle when no reference counts
    // it. The table lives in shared memory and its holders exclude each other.
    static constexpr bool kPinnedByLock = false;
    static constexpr bool kExcludes = true; // false: holders are not ordered (none)
    static constexpr MemoryRegion::Sharing kSharing = MemoryRegion::Sharing::shared;
    static constexpr MutexKind kMutexKind = MutexKind::shared_robust; // partition locks, mutexes
    // Handle: what a held key keeps besides its slot: NoHandle, the flock mode's UniqueFd, or a
    // Lease (a key its holder can lose: the mode then has release() returning false for a lost
    // key and still_held(Lease)). Early: what before_pin() found (flock: the file it tried).
    using Handle = NoHandle;
    using Early = NoEarly;
    // kTokens: grants carry fencing tokens (lock_table.h). False where the table is each
    // process's own (none, thread): its numbers would repeat in the next process.
    static constexpr bool kTokens = true;

    explicit ModeBase(const ModeParts& parts) noexcept : parts_(parts) {}

    // validate: std::invalid_argument for options the mode refuses.
    static void validate(const LockTableOptions&) {}

    // SlotLocks, by reference: an idle slot is one no reference counts; no lock to claim.
    bool pinned_by_lock() const final { return parts_.by_lock; }
    bool claim(Slot& s) override { return s.refs.load(std::memory_order_seq_cst) == 0; }
    void hand_over(Slot&) override {}
    void unclaim(Slot&) noexcept override {}
    void clear_dead_claim(Slot&) override {}

    NoEarly before_pin(std::string_view) noexcept { return {}; }
    // grant: the fencing token of the grant just taken (called by its holder, under the key's
    // lock, unless take() issued one in Taken::fence): the key's last token plus one.
    template <typename Handle>
    std::uint64_t grant(Slot& s, Handle&) noexcept
    {
        const std::uint64_t token = s.fence.load(std::memory_order_relaxed) + 1;
        s.fence.store(token, std::memory_order_relaxed);
        return token;
    }
    // leases: a held key can be taken after its lease (lock_options.h); the mode then has
    // release_fenced(Slot&, token) and still_held(const Slot&, token).
    bool leases() const noexcept { return false; }
    // unlock: lets the lock go, keeps any pin (by lock only). release: lets the lock go and
    // unpins: the guard's unlock. unpin: drops a pin take() or pinning left (by reference).
    void unlock(Slot&, NoHandle&&) noexcept {}
    void release(Slot& s, NoHandle&&) noexcept { parts_.slots.release_ref(s); }
    void unpin(Slot& s) noexcept { parts_.slots.release_ref(s); }
    // release_dead: the supervisor's recovery of one key, unpinning it. The default is for a lock
    // the holder's death already dropped.
    bool release_dead(Slot& s, pid_t dead) noexcept { return forget_dead_holder(s, dead); }
    // owner: 0 when free.
    pid_t owner(const Slot& s) const noexcept
    {
        return s.owner_pid.load(std::memory_order_relaxed);
    }

protected:
    // A waiter pins nothing by lock (slot_table.h): while it sleeps its slot may be rebound to
    // another key. So by-lock waiters sleep in slices of this length and check between them that
    // the slot is still their key's. The one place that decides how long a waiter sleeps.
    static constexpr std::int64_t kSliceNs = 20'000'000; // 20 ms

    struct Slice {
        std::int64_t until;
        bool last; // `until` is the caller's own deadline
    };
    static Slice next_slice(Deadline deadline) noexcept
    {
        const std::int64_t end = monotonic_ns() + kSliceNs;
        if (deadline && *deadline <= end) return {*deadline, true};
        return {end, false};
    }
    static bool moved(const Slot& s, std::uint32_t generation) noexcept
    {
        return s.generation.load(std::memory_order_acquire) != generation;
    }
    static bool expired(Deadline deadline) noexcept
    {
        return deadline && *deadline <= monotonic_ns();
    }

    std::uint32_t id_of(const Slot& s) const noexcept
    {
        return static_cast<std::uint32_t>(&s - &parts_.slots.slot(0));
    }

    // blocking: runs the slow path of an acquisition, recorded as a waiter (so a dead waiter can
    // be forgotten) and timed into t.waited_ns. The fast path touches neither clock nor registry.
    template <typename Handle, typename Wait>
    auto blocking(Slot& s, Taken<Handle>& t, Wait&& wait)
    {
        struct Waiting {
            WaitRegistry& waits;
            Taken<Handle>& t;
            int record;
            std::int64_t start = monotonic_ns();
            ~Waiting()
            {
                waits.leave(record);
                t.waited_ns = monotonic_ns() - start;
            }
        };
        t.blocked = true;
        Waiting w{parts_.waits, t, parts_.waits.enter(current_pid(), id_of(s))};
        return wait();
    }

    // A holder found dead by the next locker (or an evictor): counted on its key.
    static void count_recovery(Slot& s, pid_t dead) noexcept
    {
        s.recoveries.fetch_add(1, std::memory_order_relaxed);
        s.last_dead_owner.store(dead, std::memory_order_relaxed);
    }
    // A holder freed by the supervisor: counted *before* the key is freed, so whoever takes it
    // next already sees the recovery, and handed to that next holder as recovered_from().
    static void count_supervised_recovery(Slot& s, pid_t dead) noexcept
    {
        s.pending_recovery.store(dead, std::memory_order_relaxed);
        count_recovery(s, dead);
    }
    // forget_dead_holder: release_dead() of the modes whose lock the holder's death already
    // dropped (flock: the kernel; postgres: the server, with the session). Clears the owner word
    // if it still names `dead`, counts the recovery and returns the dead holder's reference.
    bool forget_dead_holder(Slot& s, pid_t dead) noexcept
    {
        pid_t expected = dead;
        if (!s.owner_pid.compare_exchange_strong(expected, 0, std::memory_order_acq_rel))
            return false;
        count_supervised_recovery(s, dead);
        parts_.slots.release_ref(s);
        return true;
    }

    ModeParts parts_;
};

// LockModeClass: what TableImpl<Mode> needs of a mode. take() has no default: how the key's lock
// is taken is what makes a mode.
// (clang-format 14 does not lay out requires-expressions.)
// clang-format off
template <typename M>
concept LockModeClass =
    std::derived_from<M, ModeBase> && std::constructible_from<M, const ModeParts&> &&
    requires(M m, const M cm, Slot& s, const Slot& cs, std::string_view key,
             typename M::Early early, typename M::Handle handle, const LockTableOptions& o) {
        { M::kPinnedByLock } -> std::convertible_to<bool>;
        { M::kExcludes } -> std::convertible_to<bool>;
        { M::kSharing } -> std::convertible_to<MemoryRegion::Sharing>;
        { M::kMutexKind } -> std::convertible_to<MutexKind>;
        M::validate(o);
        { m.before_pin(key) } -> std::same_as<typename M::Early>;
        { m.take(s, std::uint32_t{}, Deadline{}, std::move(early)) }
            -> std::same_as<Taken<typename M::Handle>>;
        m.unlock(s, std::move(handle));
        m.release(s, std::move(handle));
        m.unpin(s);
        { m.release_dead(s, pid_t{}) } -> std::same_as<bool>;
        { cm.owner(cs) } -> std::same_as<pid_t>;
        { to_token(std::move(handle)) } -> std::same_as<std::uint64_t>;
    };
// clang-format on

} // namespace forklock
