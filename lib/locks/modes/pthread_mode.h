#pragma once
// PthreadMode: what the thread and mutex modes share: the slot's own pthread mutex is the key's
// lock (and pins the slot), its holder's pid in Slot::owner_pid. Kind and Sharing make the
// difference: a default mutex in private memory (thread) or a robust process-shared one in shared
// memory (mutex). Holder death is the derived class's: clear_dead_claim, release_dead.

#include <algorithm>

#include "locks/modes/mode.h"

#include "locks/primitives/cpu_relax.h"
#include "locks/primitives/pthread_mutex.h"

namespace forklock {

template <MutexKind Kind, MemoryRegion::Sharing Sharing>
class PthreadMode : public ModeBase {
public:
    static constexpr bool kPinnedByLock = true;
    static constexpr MemoryRegion::Sharing kSharing = Sharing;
    static constexpr MutexKind kMutexKind = Kind;

    using ModeBase::ModeBase;

    // claim: the evictor's question (slot_table.h), under the partition lock.
    bool claim(Slot& s) final
    {
        switch (try_lock_mutex(&s.mutex)) {
        case MutexResult::busy:
        case MutexResult::timed_out: return false;
        case MutexResult::owner_died:
            // A dead holder nobody has recovered yet: recover it here, counted on its key.
            make_consistent(&s.mutex);
            count_recovery(s, s.owner_pid.load(std::memory_order_relaxed));
            [[fallthrough]];
        case MutexResult::acquired:
            s.owner_pid.store(current_pid(), std::memory_order_relaxed);
            return true;
        }
        return false;
    }
    // hand_over: nothing to do, owner_pid says current_pid() since the claim.
    void unclaim(Slot& s) noexcept final { unlock(s, {}); }

    Taken<Handle> take(Slot& s, std::uint32_t generation, Deadline deadline, NoEarly&&);
    void unlock(Slot& s, Handle&&) noexcept
    {
        s.owner_pid.store(0, std::memory_order_relaxed);
        unlock_mutex(&s.mutex);
    }
    void release(Slot& s, Handle&& h) noexcept { unlock(s, std::move(h)); }
    void unpin(Slot&) noexcept {}

private:
    // spin: a holder running on another core lets go within microseconds (the server holds a key
    // for one pread and one pwrite), and a futex sleep plus its wake-up costs more than that, to
    // the holder's unlock too. So a busy key is tried again for a few microseconds first, reading
    // owner_pid (a shared line) until it looks free rather than hammering the mutex's word.
    static constexpr int kSpins = 16;
    static MutexResult spin(Slot& s) noexcept
    {
        for (int i = 0; i < kSpins; ++i) {
            for (int j = 0; j < (1 << std::min(i, 5)); ++j) cpu_relax();
            if (s.owner_pid.load(std::memory_order_relaxed) != 0) continue;
            if (const MutexResult r = try_lock_mutex(&s.mutex); r != MutexResult::busy) return r;
        }
        return MutexResult::busy;
    }
    MutexResult wait(Slot& s, std::uint32_t generation, Deadline deadline);
};

template <MutexKind Kind, MemoryRegion::Sharing Sharing>
Taken<NoHandle> PthreadMode<Kind, Sharing>::take(Slot& s, std::uint32_t generation,
                                                 Deadline deadline, NoEarly&&)
{
    Taken<Handle> t;
    MutexResult r = try_lock_mutex(&s.mutex);
    if (r == MutexResult::busy) {
        t.blocked = true;
        if (expired(deadline)) return t;
        r = blocking(s, t, [&] {
            const MutexResult spun = spin(s);
            return spun != MutexResult::busy ? spun : wait(s, generation, deadline);
        });
    }
    if (r == MutexResult::timed_out || r == MutexResult::busy) return t;
    if (r == MutexResult::owner_died) {
        // The kernel handed us a dead holder's mutex: what it guarded may be half-written, but
        // our callers write atomically (rename), so making it consistent is safe.
        make_consistent(&s.mutex);
        t.recovered_from = s.owner_pid.load(std::memory_order_relaxed);
        count_recovery(s, t.recovered_from);
    }
    s.owner_pid.store(current_pid(), std::memory_order_relaxed);
    t.ok = true;
    return t;
}

// wait: sleeps on the mutex in slices, giving up when the slot moved to another key.
template <MutexKind Kind, MemoryRegion::Sharing Sharing>
MutexResult PthreadMode<Kind, Sharing>::wait(Slot& s, std::uint32_t generation, Deadline deadline)
{
    for (;;) {
        const Slice slice = next_slice(deadline);
        const timespec ts = to_timespec(slice.until);
        const MutexResult got = lock_mutex(&s.mutex, &ts);
        if (got != MutexResult::timed_out || slice.last || moved(s, generation)) return got;
    }
}

} // namespace forklock
