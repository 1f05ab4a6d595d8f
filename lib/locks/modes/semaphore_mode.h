#pragma once
// semaphore: nginx's ngx_shmtx per slot. Shared across processes and threads if the table is made
// before fork() and inherited, or named (lock_options.h); a process that makes its own unnamed
// table shares nothing. The lock word (owner pid) lives in shared memory, and each slot has a
// named POSIX semaphore for its sleepers, made with O_CREAT|O_EXCL, 0600 by the table's creator
// and unlinked at once, so nothing stays in /dev/shm, kill -9 included (a named table keeps them:
// named_table.h). Holder death: nothing happens by itself: the key stays locked until a
// supervisor that reaped the pid calls release_owned_by(pid); with recover_dead_owners = false,
// for ever (as a multiprocessing.Lock under gunicorn).
//
// Leases (options.lease_ms > 0): the one table mode that can take a live holder's key, because its
// lock is a word in shared memory, not a lock the kernel or a thread owns. A grant publishes its
// deadline (CLOCK_MONOTONIC, Slot::lease_deadline), then its token in Slot::grant. A waiter that
// finds the deadline past takes the key over by one compare-and-swap of Slot::grant from the old
// token (to kTaking while it writes the new deadline, then to its own token) and writes its pid
// into the word; the old holder's release is a compare-and-swap of Slot::grant from its token to
// 0, so exactly one of the two wins: a holder that lost finds it out there (release returns
// false and touches nothing) or in still_held() (Slot::grant is no longer its token). Takers look
// between sleeps of at most a 20 ms slice, so a key is taken up to that long after its deadline.
// A taker killed between its two compare-and-swaps leaves the key held by kTaking: as a dead
// holder, the supervisor's release_owned_by() of the pid in the word frees it.

#include <algorithm>
#include <cstdio>
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
        : ModeBase(parts), semaphores_(slot_semaphores(parts.options, parts.attach)),
          lease_ns_(parts.options.lease_ms * 1'000'000)
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
            t.ok = take_over(s, generation, t);
            return t;
        }
        t.ok = blocking(s, t, [&] { return wait(lock, s, generation, deadline, t); });
        return t;
    }
    // grant: with a lease, the deadline goes out before the token that makes it the holder's.
    std::uint64_t grant(Slot& s, Handle& h) noexcept
    {
        const std::uint64_t token = ModeBase::grant(s, h);
        if (lease_ns_ != 0) {
            s.lease_deadline.store(monotonic_ns() + lease_ns_, std::memory_order_relaxed);
            s.grant.store(token, std::memory_order_release);
        }
        return token;
    }
    bool leases() const noexcept { return lease_ns_ != 0; }
    // unlock: a take-over for a key whose slot moved (TableImpl), or a held key without a lease.
    void unlock(Slot& s, Handle&&) noexcept
    {
        if (lease_ns_ != 0) s.grant.store(0, std::memory_order_release);
        lock_of(s, current_pid()).unlock();
    }
    void release(Slot& s, Handle&& h) noexcept { unlock(s, std::move(h)); }
    // release_fenced: a leased grant's release: false, touching nothing, if it was taken over.
    bool release_fenced(Slot& s, std::uint64_t token) noexcept
    {
        std::uint64_t mine = token;
        if (!s.grant.compare_exchange_strong(mine, 0, std::memory_order_acq_rel)) {
            std::fprintf(stderr,
                         "forklock: unlock of key '%.*s' (token %llu): its lease ran out and the "
                         "key was taken over; nothing was unlocked\n",
                         static_cast<int>(s.key_view().size()), s.key_view().data(),
                         static_cast<unsigned long long>(token));
            return false;
        }
        lock_of(s, current_pid()).unlock();
        return true;
    }
    bool still_held(const Slot& s, std::uint64_t token) const noexcept
    {
        return s.grant.load(std::memory_order_acquire) == token;
    }
    void unpin(Slot&) noexcept {}

    // release_dead: only a holder can change a held word, and this one is dead: the check cannot
    // go stale.
    bool release_dead(Slot& s, pid_t dead) noexcept
    {
        if (!parts_.options.recover_dead_owners || owner(s) != dead) return false;
        count_supervised_recovery(s, dead);
        if (lease_ns_ != 0) s.grant.store(0, std::memory_order_release);
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
    // wait: sleeps on the word in slices, giving up when the slot moved to another key, and
    // taking the key over between slices once its holder's lease is past.
    bool wait(OwnerWordLock& lock, Slot& s, std::uint32_t generation, Deadline deadline,
              Taken<Handle>& t)
    {
        for (;;) {
            const Slice slice = next_slice(deadline);
            if (lock.try_lock_until(slice.until)) return true;
            if (moved(s, generation)) return false;
            if (take_over(s, generation, t)) return true;
            if (slice.last) return false;
        }
    }

    // take_over: the key of a holder whose lease is past, if this caller is the one that swaps
    // its token out of Slot::grant (see the top of this file). A grant token is never reused in a
    // slot, and the slot cannot be rebound while the word is held, so a swap that succeeds took
    // the looked-up key from the holder whose deadline was read.
    static constexpr std::uint64_t kTaking = ~std::uint64_t{0};
    bool take_over(Slot& s, std::uint32_t generation, Taken<Handle>& t) noexcept
    {
        if (lease_ns_ == 0) return false;
        std::uint64_t old = s.grant.load(std::memory_order_acquire);
        if (old == 0 || old == kTaking || moved(s, generation)) return false;
        if (monotonic_ns() < s.lease_deadline.load(std::memory_order_relaxed)) return false;
        if (!s.grant.compare_exchange_strong(old, kTaking, std::memory_order_acq_rel)) return false;
        s.word.owner.store(current_pid(), std::memory_order_relaxed);
        const std::uint64_t token = std::max(old, s.fence.load(std::memory_order_relaxed)) + 1;
        s.fence.store(token, std::memory_order_relaxed);
        s.lease_deadline.store(monotonic_ns() + lease_ns_, std::memory_order_relaxed);
        s.grant.store(token, std::memory_order_release);
        s.lease_takeovers.fetch_add(1, std::memory_order_relaxed);
        t.fence = token;
        return true;
    }

    std::vector<NamedSemaphore> semaphores_; // one per slot, index = slot id
    const std::int64_t lease_ns_;            // 0: no lease
};

} // namespace forklock
