#pragma once
// What a lock mode class is: the part of LockTable that knows which lock a slot carries. One class
// per LockMode, each in lib/locks/modes/<name>_mode.cpp; TableImpl<Mode> (table_impl.h) runs the
// table around it and calls it directly (its calls inline), so no mode is ever asked for by name.
//
// A mode class derives from ModeBase and implements SlotLocks (slot_table.h) plus:
//   static constexpr MemoryRegion::Sharing kSharing;  where the table lives
//   static constexpr MutexKind kMutexKind;            the partition locks (and slot mutexes)
//   static constexpr bool kExcludes;                  false: holders are not ordered (none)
//   static void validate(const LockTableOptions&);    std::invalid_argument for options it refuses
//   using Handle;   what a held key keeps besides its slot: NoHandle, the flock mode's UniqueFd,
//                   or a Lease (postgres: a key its holder can lose), whose mode also has
//                   bool release(Slot&, Lease&&) noexcept (false: it had been lost) and
//                   bool still_held(Lease) const noexcept (KeyGuard::still_held())
//   optional: std::vector<ServerLock> server_locks(std::chrono::milliseconds) const
//   using Early;    what before_pin() found: NoEarly, or flock's file tried before the pin
//   Early before_pin(std::string_view key);
//   Taken<Handle> take(Slot&, std::uint32_t generation, Deadline, Early&&);   takes the key's lock
//   void unlock(Slot&, Handle&&) noexcept;    lets the lock go, keeps any pin (by lock only)
//   void release(Slot&, Handle&&) noexcept;   lets the lock go and unpins: the guard's unlock
//   void unpin(Slot&) noexcept;               drops a pin take() or pinning left (by reference)
//   bool release_dead(Slot&, pid_t dead);     the supervisor's recovery of one key, unpinning it
//   pid_t owner(const Slot&) const;           0 when free
// Every member may be called from any thread of any process sharing the table; take() is the only
// one that blocks.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <sys/types.h>

#include <forklock/lock_table.h>
#include "locks/table/slot_table.h"
#include "locks/table/wait_registry.h"
#include "os/current_pid.h"
#include "os/memory_region.h"
#include "os/monotonic_clock.h"

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

// The outcome of take(): whether the lock was taken, whether it had to wait (and how long), and
// the dead holder it was recovered from.
template <typename Handle>
struct Taken {
    bool ok = false;
    bool blocked = false;
    pid_t recovered_from = 0;
    std::int64_t waited_ns = 0;
    Handle handle{};
};

// The tables' parts a mode works on. The references are bound before the parts are built (the
// SlotTable needs the mode first), so a mode must not touch them in its constructor.
struct ModeParts {
    const LockTableOptions& options;
    SlotTable& slots;
    WaitRegistry& waits;
    bool attach = false; // a named table another process made: open its semaphores, create none
};

class ModeBase {
public:
    explicit ModeBase(const ModeParts& parts) noexcept : parts_(parts) {}

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

} // namespace forklock
