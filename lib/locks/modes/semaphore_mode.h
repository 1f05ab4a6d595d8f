#pragma once
// semaphore: nginx's ngx_shmtx per slot. Shared across processes and threads if the table is made
// before fork() and inherited, or named (lock_options.h); a process that makes its own unnamed
// table shares nothing. The lock word (owner pid) lives in shared memory, and each slot has a
// named POSIX semaphore for its sleepers, made with O_CREAT|O_EXCL, 0600 by the table's creator
// and unlinked at once, so nothing stays in /dev/shm, kill -9 included (a named table keeps them:
// named_table.h). Holder death: nothing happens by itself: the key stays locked until a
// supervisor that reaped the pid calls release_owned_by(pid); with recover_dead_owners = false,
// for ever (as a multiprocessing.Lock under gunicorn).

#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "locks/modes/mode.h"
#include "locks/primitives/owner_word_lock.h"
#include "os/named_semaphore.h"

namespace forklock {

// slot_semaphores: one per slot, index = slot id: an unnamed table's made and unlinked at once;
// a named table's made by its creator, opened by everyone else (`attach`).
std::vector<NamedSemaphore> slot_semaphores(const LockTableOptions& options, bool attach);

class SemaphoreMode final : public ModeBase {
public:
    static constexpr bool kPinnedByLock = true;

    explicit SemaphoreMode(const ModeParts& parts)
        : ModeBase(parts), semaphores_(slot_semaphores(parts.options, parts.attach))
    {
    }

    static void validate(const LockTableOptions& o)
    {
        if (o.capacity > kMaxSemaphoreCapacity)
            throw std::invalid_argument(fmt::format(
                "semaphore mode maps one page per slot: capacity must be at most {}, not {}",
                kMaxSemaphoreCapacity, o.capacity));
    }

    // claim: takes the word for the evictor itself, so the lock is already the caller's when the
    // slot is bound to its new key (no hand-over: a compare-and-swap less per miss). An evictor
    // killed before the slot's state says claimed leaves a bound slot held by a dead pid: a
    // holder, freed by the supervisor; one killed after, a claimed slot: clear_dead_claim.
    bool claim(Slot& s) override { return lock_of(s, current_pid()).try_lock(); }
    // unclaim: wakes a sleeper that came for the old key, as an unlock would: it finds out it is
    // late.
    void unclaim(Slot& s) noexcept override { lock_of(s, current_pid()).unlock(); }
    // clear_dead_claim: a claimed slot's word can only be held by its evictor, the dead holder of
    // the partition (a bound slot's may be a real holder's: the supervisor's to free).
    void clear_dead_claim(Slot& s) override
    {
        if (state_kind(s.state.load(std::memory_order_acquire)) != SlotState::claimed) return;
        if (const pid_t evictor = owner(s); evictor != 0)
            (void)lock_of(s, evictor).force_unlock(evictor);
    }

    Taken<Handle> take(Slot& s, std::uint32_t generation, Deadline deadline, Early&&)
    {
        Taken<Handle> t;
        OwnerWordLock lock = lock_of(s, current_pid());
        t.ok = lock.try_lock();
        if (t.ok) return t;
        if (expired(deadline)) {
            t.blocked = true;
            return t;
        }
        t.ok = blocking(s, t, [&] { return wait(lock, s, generation, deadline); });
        return t;
    }
    void unlock(Slot& s, Handle&&) noexcept { lock_of(s, current_pid()).unlock(); }
    void release(Slot& s, Handle&& h) noexcept { unlock(s, std::move(h)); }
    void unpin(Slot&) noexcept {}

    // release_dead: only a holder can change a held word, and this one is dead: the check cannot
    // go stale.
    bool release_dead(Slot& s, pid_t dead) noexcept
    {
        if (!parts_.options.recover_dead_owners || owner(s) != dead) return false;
        count_supervised_recovery(s, dead);
        return lock_of(s, dead).force_unlock(dead);
    }
    pid_t owner(const Slot& s) const noexcept
    {
        return s.word.owner.load(std::memory_order_relaxed);
    }

private:
    OwnerWordLock lock_of(Slot& s, pid_t self) noexcept
    {
        return OwnerWordLock(s.word, semaphores_[id_of(s)], self);
    }
    // wait: sleeps on the word in slices, giving up when the slot moved to another key.
    bool wait(OwnerWordLock& lock, const Slot& s, std::uint32_t generation, Deadline deadline)
    {
        for (;;) {
            const Slice slice = next_slice(deadline);
            if (lock.try_lock_until(slice.until)) return true;
            if (slice.last || moved(s, generation)) return false;
        }
    }

    std::vector<NamedSemaphore> semaphores_; // one per slot, index = slot id
};

} // namespace forklock
