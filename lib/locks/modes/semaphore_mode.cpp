// semaphore: nginx's ngx_shmtx per slot. The lock word (owner pid) lives in shared memory, and
// each slot has a named POSIX semaphore for its sleepers, made with O_CREAT|O_EXCL, 0600 by the
// table's creator and unlinked at once (a named table keeps them: named_table.h). Holder death:
// nothing happens by itself; a supervisor that reaped the pid calls release_owned_by(pid) (which
// does nothing with recover_dead_owners = false: the key then stays locked for ever, as a
// multiprocessing.Lock).

#include <dirent.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "locks/modes/modes.h"
#include "locks/modes/table_impl.h"
#include "locks/primitives/owner_word_lock.h"
#include "os/named_semaphore.h"

namespace forklock {
namespace {

// A named table's semaphores (named_table.h): made by its creator, which holds the object
// exclusively, so a name already there is a leftover of a dead table's and is replaced; opened
// by everyone else. Removed by the table's last user.
std::vector<NamedSemaphore> named_semaphores(const std::string& table, std::size_t n, bool attach)
{
    std::vector<NamedSemaphore> sems;
    sems.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::string name = semaphore_name_of(table, i);
        if (attach) {
            sems.push_back(NamedSemaphore::open(name));
            continue;
        }
        NamedSemaphore::remove(name);
        sems.push_back(NamedSemaphore::create(name));
    }
    return sems;
}

// Names left in /dev/shm by a creator killed between sem_open and sem_unlink (microseconds, but
// kill -9 finds every window): forklock.PID.* whose PID no longer runs.
void remove_stale_semaphores()
{
    DIR* dir = ::opendir("/dev/shm");
    if (!dir) return;
    while (const dirent* e = ::readdir(dir)) {
        int pid = 0;
        if (std::sscanf(e->d_name, "sem.forklock.%d.", &pid) == 1 && pid > 0 &&
            ::kill(pid, 0) != 0 && errno == ESRCH)
            NamedSemaphore::remove(std::string("/") + (e->d_name + 4));
    }
    ::closedir(dir);
}

std::vector<NamedSemaphore> make_semaphores(std::size_t n)
{
    static std::atomic<unsigned> tables{0};
    remove_stale_semaphores();
    const unsigned table = tables.fetch_add(1);
    std::vector<NamedSemaphore> sems;
    sems.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        sems.push_back(NamedSemaphore::create_unlinked(
            fmt::format("/forklock.{}.{}.{}", current_pid(), table, i)));
    return sems;
}

class SemaphoreMode final : public ModeBase, public SlotLocks {
public:
    static constexpr bool kPinnedByLock = true;
    static constexpr bool kExcludes = true;
    static constexpr MemoryRegion::Sharing kSharing = MemoryRegion::Sharing::shared;
    static constexpr MutexKind kMutexKind = MutexKind::shared_robust;
    using Handle = NoHandle;
    using Early = NoEarly;

    explicit SemaphoreMode(const ModeParts& parts)
        : ModeBase(parts), semaphores_(parts.options.name.empty()
                                           ? make_semaphores(parts.options.capacity)
                                           : named_semaphores(parts.options.name,
                                                              parts.options.capacity, parts.attach))
    {
    }

    static void validate(const LockTableOptions& o)
    {
        if (o.capacity > LockTable::kMaxSemaphoreCapacity)
            throw std::invalid_argument(fmt::format(
                "semaphore mode maps one page per slot: capacity must be at most {}, not {}",
                LockTable::kMaxSemaphoreCapacity, o.capacity));
    }

    bool pinned_by_lock() const override { return kPinnedByLock; }
    // claim: takes the word for the evictor itself, so the lock is already the caller's when the
    // slot is bound to its new key (no hand-over: a compare-and-swap less per miss). An evictor
    // killed before the slot's state says claimed leaves a bound slot held by a dead pid: a
    // holder, freed by the supervisor; one killed after, a claimed slot: clear_dead_claim.
    bool claim(Slot& s) override { return lock_of(s, current_pid()).try_lock(); }
    void hand_over(Slot&) override {}
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

    Early before_pin(std::string_view) noexcept { return {}; }
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

} // namespace

std::unique_ptr<LockTable::Impl> make_semaphore_table(const LockTableOptions& o)
{
    SemaphoreMode::validate(o);
    using Table = TableImpl<SemaphoreMode>;
    if (o.name.empty()) return std::make_unique<Table>(o);
    return std::make_unique<Table>(
        o, named_table_memory(o, Table::slot_bytes(o), WaitRegistry::kBytes));
}

} // namespace forklock
