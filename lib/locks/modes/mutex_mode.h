#pragma once
// mutex: a robust PTHREAD_PROCESS_SHARED mutex per slot, in shared memory. Shared across processes
// and threads if the table is made before fork() and inherited, or named (lock_options.h).
// Holder death: the next locker gets EOWNERDEAD from the kernel and recovers the key by itself
// (and counts it); a supervisor may also free it first with release_owned_by(pid).

#include "locks/modes/pthread_mode.h"

namespace forklock {

class MutexMode final
    : public PthreadMode<MutexKind::shared_robust, MemoryRegion::Sharing::shared> {
public:
    using PthreadMode::PthreadMode;

    // clear_dead_claim: a claimed slot's mutex can only be held by its dead evictor (the kernel
    // says EOWNERDEAD) or, for a moment, by a late acquirer who will let go. A bound slot's mutex
    // may be a real holder's: its recovery is the next locker's to count.
    void clear_dead_claim(Slot& s) override
    {
        if (state_kind(s.state.load(std::memory_order_acquire)) != SlotState::claimed) return;
        const MutexResult r = try_lock_mutex(&s.mutex);
        if (r == MutexResult::owner_died) make_consistent(&s.mutex);
        if (r == MutexResult::owner_died || r == MutexResult::acquired) unlock(s, {});
    }

    // release_dead: takes the dead holder's mutex (EOWNERDEAD), makes it consistent, lets it go.
    bool release_dead(Slot& s, pid_t dead)
    {
        if (owner(s) != dead) return false;
        const MutexResult r = try_lock_mutex(&s.mutex);
        if (r == MutexResult::acquired) unlock_mutex(&s.mutex);
        if (r != MutexResult::owner_died)
            return false; // someone already took it back (or it was never dead's)
        make_consistent(&s.mutex);
        s.owner_pid.store(0, std::memory_order_relaxed);
        count_supervised_recovery(s, dead);
        unlock_mutex(&s.mutex);
        return true;
    }
};

} // namespace forklock
