#include "locks/lock_table.h"

#include <algorithm>
#include <atomic>
#include <dirent.h>
#include <fmt/format.h>
#include <signal.h>
#include <utility>

#include "os/current_pid.h"
#include "locks/primitives/key_file_lock.h"
#include "os/memory_region.h"
#include "os/monotonic_clock.h"
#include "os/named_semaphore.h"
#include "locks/primitives/owner_word_lock.h"
#include "locks/table/slot_table.h"
#include "locks/table/wait_registry.h"

namespace forklock {

namespace {

bool shared_memory_for(LockMode mode)
{
    return mode == LockMode::semaphore || mode == LockMode::mutex || mode == LockMode::flock;
}

MemoryRegion::Sharing sharing_for(LockMode mode)
{
    return shared_memory_for(mode) ? MemoryRegion::Sharing::shared : MemoryRegion::Sharing::private_copy;
}

// Whether holding the slot's own lock keeps the slot bound to its key (slot_table.h). none has no
// lock and flock's lock is a file, so those two count references instead.
bool lock_pins_slot(LockMode mode)
{
    return mode == LockMode::thread || mode == LockMode::mutex || mode == LockMode::semaphore;
}

void validate(const LockTableOptions& o)
{
    if (o.capacity == 0 || o.capacity > LockTable::kMaxCapacity)
        throw std::invalid_argument(fmt::format("lock table capacity must be 1..{}, not {}",
                                                LockTable::kMaxCapacity, o.capacity));
    if (o.mode == LockMode::semaphore && o.capacity > LockTable::kMaxSemaphoreCapacity)
        throw std::invalid_argument(
            fmt::format("semaphore mode maps one page per slot: capacity must be at most {}, not {}",
                        LockTable::kMaxSemaphoreCapacity, o.capacity));
    if (o.mode == LockMode::flock && !std::filesystem::is_directory(o.lock_dir))
        throw std::invalid_argument(
            fmt::format("flock mode needs an existing lock_dir, not '{}'", o.lock_dir.string()));
}

void validate_key(std::string_view key)
{
    if (key.empty() || key.size() > LockTable::kMaxKeyLength)
        throw InvalidKeyError(fmt::format("a key is 1 to {} bytes, not {}",
                                          LockTable::kMaxKeyLength, key.size()));
}

// Names left in /dev/shm by a creator killed between sem_open and sem_unlink (microseconds, but
// kill -9 finds every window): forklock.PID.* whose PID no longer runs.
void remove_stale_semaphores()
{
    DIR* dir = ::opendir("/dev/shm");
    if (!dir)
        return;
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

std::optional<std::int64_t> deadline_after(std::chrono::nanoseconds timeout)
{
    if (timeout == LockTable::kNoTimeout)
        return std::nullopt;
    return monotonic_ns() + std::max<std::int64_t>(timeout.count(), 0);
}

// A waiter pins nothing by lock (slot_table.h): while it sleeps, its slot may be evicted and given
// to another key, whose holder it would then be waiting for (until a lock_for gave up on a key
// that was free). So waiters sleep in slices and check between them that the slot is still their
// key's; if it is not, acquire() looks the key up again.
constexpr std::int64_t kMovedCheckNs = 20'000'000; // 20 ms

struct Slice {
    std::int64_t until;
    bool last; // `until` is the caller's own deadline
};

Slice next_slice(std::optional<std::int64_t> deadline)
{
    const std::int64_t end = monotonic_ns() + kMovedCheckNs;
    if (deadline && *deadline <= end)
        return {*deadline, true};
    return {end, false};
}

bool moved(const Slot& s, std::uint32_t generation)
{
    return s.generation.load(std::memory_order_acquire) != generation;
}

} // namespace

struct LockTable::Impl final : SlotLocks {
    LockTableOptions options;
    bool by_lock;
    MemoryRegion region;
    SlotTable slots;
    WaitRegistry waits;
    std::vector<NamedSemaphore> semaphores; // semaphore mode: one per slot, index = slot id

    explicit Impl(const LockTableOptions& o)
        : options(o), by_lock(lock_pins_slot(o.mode)),
          region(TableGeometry::for_capacity(o.capacity).region_bytes(), sharing_for(o.mode)),
          slots(region.data(), TableGeometry::for_capacity(o.capacity),
                shared_memory_for(o.mode) ? MutexKind::shared_robust : MutexKind::private_default,
                *this),
          waits(sharing_for(o.mode))
    {
        if (o.mode == LockMode::semaphore)
            semaphores = make_semaphores(o.capacity);
    }

    // SlotLocks: the evictor's side of each mode's lock.
    bool pinned_by_lock() const override { return by_lock; }
    bool claim(Slot& s) override;
    void hand_over(Slot& s) override;
    void unclaim(Slot& s) noexcept override;
    void clear_dead_claim(Slot& s) override;
    bool busy(const Slot& s, std::uint32_t waiters) const;
    pid_t owner_of(const Slot& s) const
    {
        return options.mode == LockMode::semaphore ? s.word.owner.load(std::memory_order_relaxed)
                                                   : s.owner_pid.load(std::memory_order_relaxed);
    }

    std::uint32_t id_of(const Slot& s) const
    {
        return static_cast<std::uint32_t>(&s - &slots.slot(0));
    }
    NamedSemaphore& semaphore_of(Slot& s) { return semaphores[id_of(s)]; }

    // The outcome of taking the key's lock: whether it was taken, waited, and recovered.
    struct Taken {
        bool ok = false;
        bool blocked = false;
        pid_t recovered_from = 0;
        int fd = -1;
        std::int64_t waited_ns = 0;
    };
    // take, take_pinned: `generation` (by lock): the slot's when the key was looked up, so a
    // waiter can tell its slot went to another key. `fd` (flock only): the key's lock file,
    // opened by try_file_unpinned.
    Taken take(Slot& s, std::uint32_t generation, std::optional<std::int64_t> deadline, int fd);
    Taken take_pinned(Slot& s, std::uint32_t generation, std::optional<std::int64_t> deadline, int fd);
    Taken take_mutex(Slot& s, std::uint32_t generation, std::optional<std::int64_t> deadline);
    Taken take_word(Slot& s, std::uint32_t generation, std::optional<std::int64_t> deadline);
    struct FileTry {
        int fd = -1; // open: locked, or for take_file to wait on
        bool locked = false;
    };
    FileTry try_file_unpinned(std::string_view key);
    Taken take_file(Slot& s, std::optional<std::int64_t> deadline, int fd);
    Taken own_file(Slot& s, int fd, Taken t);
    void give_back(Slot& s, int fd) noexcept;
    void unlock_only(Slot& s, int fd) noexcept;
    void unpin(Slot& s) noexcept
    {
        if (!by_lock)
            slots.release_ref(s);
    }
    SlotRef pin(std::string_view key);
    SlotRef pin_or_close(std::string_view key, int fd); // pin(), closing `fd` if it throws
    bool release_if_owned(Slot& s, pid_t dead);
    void record(Slot& s, const Taken& t, std::int64_t waited_ns);
    template <typename Wait>
    auto blocking(Slot& s, Taken& t, Wait&& wait);
};

// blocking: runs the slow path of an acquisition, recorded as a waiter and timed. The fast path
// (an uncontended try) touches neither the clock nor the wait registry.
template <typename Wait>
auto LockTable::Impl::blocking(Slot& s, Taken& t, Wait&& wait)
{
    struct Waiting {
        WaitRegistry& waits;
        Taken& t;
        int record;
        std::int64_t start = monotonic_ns();
        ~Waiting()
        {
            waits.leave(record);
            t.waited_ns = monotonic_ns() - start;
        }
    };
    t.blocked = true;
    Waiting w{waits, t, waits.enter(current_pid(), id_of(s))};
    return wait();
}

namespace {
void count_recovery(Slot& s, pid_t dead)
{
    s.recoveries.fetch_add(1, std::memory_order_relaxed);
    s.last_dead_owner.store(dead, std::memory_order_relaxed);
}
} // namespace

// What an evictor's claim leaves in a semaphore-mode owner word until hand_over: never a pid, so
// neither a holder's unlock nor a supervisor's release_owned_by can take it for theirs.
constexpr pid_t kClaimedByTable = -1;

// claim: the evictor's question (slot_table.h), under the partition lock.
bool LockTable::Impl::claim(Slot& s)
{
    switch (options.mode) {
    case LockMode::semaphore: {
        std::int32_t expected = 0;
        return s.word.owner.compare_exchange_strong(expected, kClaimedByTable,
                                                    std::memory_order_acquire, std::memory_order_relaxed);
    }
    case LockMode::thread:
    case LockMode::mutex:
        switch (try_lock_mutex(&s.mutex)) {
        case MutexResult::busy:
        case MutexResult::timed_out: return false;
        case MutexResult::owner_died:
            // A dead holder nobody has recovered yet: recover it here, counted on its key.
            make_consistent(&s.mutex);
            count_recovery(s, s.owner_pid.load(std::memory_order_relaxed));
            [[fallthrough]];
        case MutexResult::acquired: s.owner_pid.store(current_pid(), std::memory_order_relaxed); return true;
        }
        return false;
    case LockMode::none: return s.refs.load(std::memory_order_seq_cst) == 0;
    case LockMode::flock:
        if (s.refs.load(std::memory_order_seq_cst) != 0)
            return false;
        // The key leaves the table: take its lock file too (if nobody holds it, here or in a
        // process with its own table), so lock files stay bounded by the capacity.
        remove_lock_file_if_free(options.lock_dir / lock_file_name(s.key_view()));
        return true;
    }
    return false;
}

void LockTable::Impl::hand_over(Slot& s)
{
    // A plain store: while the word says kClaimedByTable every other CAS on it fails.
    if (options.mode == LockMode::semaphore)
        s.word.owner.store(current_pid(), std::memory_order_relaxed);
}

void LockTable::Impl::unclaim(Slot& s) noexcept
{
    if (options.mode == LockMode::semaphore) {
        // Wakes a sleeper that came for the old key, as an unlock would: it finds out it is late.
        owner_force_unlock(s.word, semaphore_of(s), kClaimedByTable);
    } else if (options.mode == LockMode::thread || options.mode == LockMode::mutex) {
        s.owner_pid.store(0, std::memory_order_relaxed);
        unlock_mutex(&s.mutex);
    }
}

void LockTable::Impl::clear_dead_claim(Slot& s)
{
    if (options.mode == LockMode::semaphore) {
        owner_force_unlock(s.word, semaphore_of(s), kClaimedByTable);
        return;
    }
    // mutex: a claimed slot's mutex can only be held by its dead evictor (the kernel says
    // EOWNERDEAD) or, for a moment, by a late acquirer who will let go. A bound slot's mutex may
    // be a real holder's: its recovery is the next locker's to count.
    if (options.mode != LockMode::mutex ||
        state_kind(s.state.load(std::memory_order_acquire)) != SlotState::claimed)
        return;
    const MutexResult r = try_lock_mutex(&s.mutex);
    if (r == MutexResult::owner_died)
        make_consistent(&s.mutex);
    if (r == MutexResult::owner_died || r == MutexResult::acquired) {
        s.owner_pid.store(0, std::memory_order_relaxed);
        unlock_mutex(&s.mutex);
    }
}

bool LockTable::Impl::busy(const Slot& s, std::uint32_t waiters) const
{
    if (!by_lock)
        return s.refs.load(std::memory_order_relaxed) != 0;
    return owner_of(s) != 0 || waiters != 0;
}

// take_pinned: take() for a slot the caller pinned, unpinning it if take() throws. (Returned, not
// assigned inside the caller's try block: the copy of a just-stored struct stalled store
// forwarding on every lock.)
LockTable::Impl::Taken LockTable::Impl::take_pinned(Slot& s, std::uint32_t generation,
                                                    std::optional<std::int64_t> deadline, int fd)
{
    try {
        return take(s, generation, deadline, fd);
    } catch (...) {
        unpin(s);
        throw;
    }
}

LockTable::Impl::Taken LockTable::Impl::take(Slot& s, std::uint32_t generation,
                                             std::optional<std::int64_t> deadline, int fd)
{
    switch (options.mode) {
    case LockMode::none: return {true, false, 0, -1};
    case LockMode::thread:
    case LockMode::mutex: return take_mutex(s, generation, deadline);
    case LockMode::semaphore: return take_word(s, generation, deadline);
    case LockMode::flock: return take_file(s, deadline, fd);
    }
    return {};
}

LockTable::Impl::Taken LockTable::Impl::take_mutex(Slot& s, std::uint32_t generation,
                                                   std::optional<std::int64_t> deadline)
{
    Taken t;
    MutexResult r = try_lock_mutex(&s.mutex);
    if (r == MutexResult::busy) {
        t.blocked = true;
        if (deadline && *deadline <= monotonic_ns())
            return t;
        r = blocking(s, t, [&] {
            for (;;) {
                const Slice slice = next_slice(deadline);
                const timespec ts = to_timespec(slice.until);
                const MutexResult got = lock_mutex(&s.mutex, &ts);
                if (got != MutexResult::timed_out || slice.last || moved(s, generation))
                    return got;
            }
        });
    }
    if (r == MutexResult::timed_out || r == MutexResult::busy)
        return t;
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

LockTable::Impl::Taken LockTable::Impl::take_word(Slot& s, std::uint32_t generation,
                                                  std::optional<std::int64_t> deadline)
{
    Taken t;
    const pid_t self = current_pid();
    if (deadline && *deadline <= monotonic_ns()) {
        t.ok = owner_try_lock(s.word, self);
        t.blocked = !t.ok;
        return t;
    }
    t.ok = owner_try_lock(s.word, self);
    if (!t.ok)
        t.ok = blocking(s, t, [&] {
            for (;;) {
                const Slice slice = next_slice(deadline);
                bool blocked = false;
                if (owner_lock(s.word, semaphore_of(s), self, slice.until, blocked))
                    return true;
                if (slice.last || moved(s, generation))
                    return false;
            }
        });
    return t;
}

// flock, and why the order matters: a process killed while it pins a slot and holds no lock
// leaves a reference nobody can return (slot_table.h), and the file syscalls are where a worker
// spends its time. So a file lock that is free is taken *before* the slot is pinned
// (try_file_unpinned, then own_file: nothing slow between pin and owner), and a wait is recorded
// as one (take_file: the WaitRegistry returns a dead waiter's reference) from just after the pin
// until just before the owner is written.
LockTable::Impl::FileTry LockTable::Impl::try_file_unpinned(std::string_view key)
{
    FileTry f;
    f.locked = lock_key_file(options.lock_dir / lock_file_name(key), std::int64_t{0}, f.fd); // one try
    return f; // not locked: take_file waits on f.fd
}

LockTable::Impl::Taken LockTable::Impl::take_file(Slot& s, std::optional<std::int64_t> deadline, int fd)
{
    Taken t;
    const auto file = options.lock_dir / lock_file_name(s.key_view());
    if (blocking(s, t, [&] { return lock_key_file(file, deadline, fd); }))
        return own_file(s, fd, t);
    unlock_and_close(fd);
    return t;
}

// own_file: the file lock `fd` is ours; so is the key. owner_pid still set means its holder died
// holding the file lock (the kernel released it) and no supervisor has cleaned up yet: the
// recovery is ours to count.
LockTable::Impl::Taken LockTable::Impl::own_file(Slot& s, int fd, Taken t)
{
    t.ok = true;
    t.fd = fd;
    const pid_t previous = s.owner_pid.exchange(current_pid(), std::memory_order_acq_rel);
    if (previous != 0) {
        t.recovered_from = previous;
        count_recovery(s, previous);
        slots.release_ref(s); // the dead holder's reference
    }
    return t;
}

void LockTable::Impl::give_back(Slot& s, int fd) noexcept
{
    if (options.mode == LockMode::flock) {
        // Unpinned while the file is still locked, so no slow step lies between the two (see
        // take_file). If the slot is evicted meanwhile, its lock file stays: it is locked.
        s.owner_pid.store(0, std::memory_order_release);
        unpin(s);
        unlock_and_close(fd);
        return;
    }
    unlock_only(s, fd);
    unpin(s);
}

void LockTable::Impl::unlock_only(Slot& s, int fd) noexcept
{
    switch (options.mode) {
    case LockMode::none: break;
    case LockMode::thread:
    case LockMode::mutex:
        s.owner_pid.store(0, std::memory_order_relaxed);
        unlock_mutex(&s.mutex);
        break;
    case LockMode::semaphore: owner_unlock(s.word, semaphore_of(s), current_pid()); break;
    case LockMode::flock:
        s.owner_pid.store(0, std::memory_order_release);
        unlock_and_close(fd);
        break;
    }
}

void LockTable::Impl::record(Slot& s, const Taken& t, std::int64_t waited_ns)
{
    if (options.mode == LockMode::none) { // nothing orders the writers: count atomically
        s.acquisitions.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    bump(s.acquisitions);
    if (!t.blocked)
        return;
    bump(s.contended);
    bump(s.wait_ns_total, static_cast<std::uint64_t>(waited_ns));
    if (static_cast<std::uint64_t>(waited_ns) > s.wait_ns_max.load(std::memory_order_relaxed))
        s.wait_ns_max.store(static_cast<std::uint64_t>(waited_ns), std::memory_order_relaxed);
}

// release_if_owned: the supervisor's half of recovery. The recovery is counted *before* the key is
// freed, so whoever takes the key next already sees it in the statistics; the dead holder's
// reference is returned only after, so the slot cannot be reused while we still touch it.
bool LockTable::Impl::release_if_owned(Slot& s, pid_t dead)
{
    auto count = [&] {
        s.pending_recovery.store(dead, std::memory_order_relaxed);
        s.recoveries.fetch_add(1, std::memory_order_relaxed);
        s.last_dead_owner.store(dead, std::memory_order_relaxed);
    };
    switch (options.mode) {
    case LockMode::semaphore:
        // Only a holder can change a held word, and this one is dead: the check cannot go stale.
        if (!options.recover_dead_owners || s.word.owner.load(std::memory_order_acquire) != dead)
            return false;
        count();
        owner_force_unlock(s.word, semaphore_of(s), dead);
        break;
    case LockMode::mutex: {
        if (s.owner_pid.load(std::memory_order_relaxed) != dead)
            return false;
        const MutexResult r = try_lock_mutex(&s.mutex);
        if (r == MutexResult::acquired)
            unlock_mutex(&s.mutex);
        if (r != MutexResult::owner_died)
            return false; // someone already took it back (or it was never dead's)
        make_consistent(&s.mutex);
        s.owner_pid.store(0, std::memory_order_relaxed);
        count();
        unlock_mutex(&s.mutex);
        break;
    }
    case LockMode::flock: {
        pid_t expected = dead;
        if (!s.owner_pid.compare_exchange_strong(expected, 0, std::memory_order_acq_rel))
            return false;
        count();
        break;
    }
    case LockMode::none:
    case LockMode::thread: return false;
    }
    unpin(s); // by reference (flock): the dead holder's
    return true;
}

LockTable::LockTable(const LockTableOptions& options)
{
    validate(options);
    impl_ = std::make_unique<Impl>(options);
}

LockTable::~LockTable() = default;

LockMode LockTable::mode() const noexcept { return impl_->options.mode; }
const LockTableOptions& LockTable::options() const noexcept { return impl_->options; }

KeyGuard LockTable::lock(std::string_view key) { return acquire(key, kNoTimeout); }
KeyGuard LockTable::try_lock(std::string_view key) { return acquire(key, std::chrono::nanoseconds(0)); }
KeyGuard LockTable::lock_for(std::string_view key, std::chrono::nanoseconds timeout)
{
    return acquire(key, timeout);
}

// pin: the key's slot, held in place either by a reference (returned pinned) or, by lock, by the
// caller taking its lock and then checking the returned generation (returned unpinned, unless
// ref.held). Returned by value: in registers, not through memory the caller reads back at once.
SlotRef LockTable::Impl::pin(std::string_view key)
{
    if (!by_lock)
        return {&slots.acquire_ref(key)};
    return slots.lookup(key);
}

SlotRef LockTable::Impl::pin_or_close(std::string_view key, int fd)
{
    try {
        return pin(key);
    } catch (...) {
        unlock_and_close(fd);
        throw;
    }
}

KeyGuard LockTable::acquire(std::string_view key, std::chrono::nanoseconds timeout)
{
    validate_key(key);
    const auto deadline = deadline_after(timeout);
    for (;;) {
        // flock: a free file lock is taken before the slot is pinned (take_file says why).
        const Impl::FileTry file = impl_->options.mode == LockMode::flock
                                       ? impl_->try_file_unpinned(key)
                                       : Impl::FileTry{};
        const SlotRef ref = file.fd < 0 ? impl_->pin(key) : impl_->pin_or_close(key, file.fd);
        Slot& s = *ref.slot;
        // ref.held: the slot was bound for us by eviction, its lock handed over already.
        const Impl::Taken t = ref.held ? Impl::Taken{true}
                              : file.locked ? impl_->own_file(s, file.fd, {})
                                            : impl_->take_pinned(s, ref.generation, deadline, file.fd);
        if (impl_->by_lock && !ref.held && !SlotTable::still_bound(ref)) {
            // The slot went to another key between lookup and lock (we may even have waited on
            // that key): the looked-up key has a slot of its own now, or none. Look again.
            if (t.ok)
                impl_->unlock_only(s, t.fd);
            continue;
        }
        if (!t.ok) {
            impl_->unpin(s);
            return {};
        }
        impl_->record(s, t, t.waited_ns);
        pid_t recovered_from = t.recovered_from;
        if (!recovered_from && s.pending_recovery.load(std::memory_order_relaxed) != 0)
            recovered_from = s.pending_recovery.exchange(0, std::memory_order_relaxed);
        return KeyGuard(this, &s, t.fd, std::chrono::nanoseconds(t.waited_ns), recovered_from);
    }
}

void LockTable::unlock(KeyGuard& g) noexcept { impl_->give_back(*g.slot_, g.fd_); }

std::size_t LockTable::release_owned_by(pid_t pid)
{
    if (pid <= 0)
        return 0;
    std::vector<Slot*> owned;
    impl_->slots.for_each_bound([&](const Slot& s) {
        if (impl_->owner_of(s) == pid)
            owned.push_back(const_cast<Slot*>(&s));
    });
    std::size_t freed = 0;
    for (Slot* s : owned)
        freed += impl_->release_if_owned(*s, pid) ? 1 : 0;
    // And it waits on nothing any more. By reference (flock), each wait also held a reference to
    // its slot, taken before the record and dropped after it: return those too, or the slot
    // could never be reused.
    for (const std::uint32_t slot : impl_->waits.forget(pid))
        impl_->unpin(impl_->slots.slot(slot));
    return freed;
}

TableStats LockTable::stats() const
{
    TableStats t = impl_->slots.stats();
    t.shared = shared_memory_for(impl_->options.mode);
    const auto waiters = impl_->waits.count_by_slot(impl_->options.capacity);
    impl_->slots.for_each_bound(
        [&](const Slot& s) { t.active += impl_->busy(s, waiters[impl_->id_of(s)]) ? 1 : 0; });
    return t;
}

std::vector<KeyStats> LockTable::key_stats(std::size_t limit) const
{
    std::vector<KeyStats> out;
    const auto waiters = impl_->waits.count_by_slot(impl_->options.capacity);
    impl_->slots.for_each_bound([&](const Slot& s) {
        KeyStats k;
        k.key.assign(s.key_view());
        k.owner_pid = impl_->owner_of(s);
        k.waiters = waiters[impl_->id_of(s)];
        k.acquisitions = s.acquisitions.load(std::memory_order_relaxed);
        k.contended = s.contended.load(std::memory_order_relaxed);
        k.wait_ns_total = s.wait_ns_total.load(std::memory_order_relaxed);
        k.wait_ns_max = s.wait_ns_max.load(std::memory_order_relaxed);
        k.recoveries = s.recoveries.load(std::memory_order_relaxed);
        k.last_dead_owner = s.last_dead_owner.load(std::memory_order_relaxed);
        out.push_back(std::move(k));
    });
    std::sort(out.begin(), out.end(), [](const KeyStats& a, const KeyStats& b) {
        return a.acquisitions != b.acquisitions ? a.acquisitions > b.acquisitions : a.key < b.key;
    });
    if (limit && out.size() > limit)
        out.resize(limit);
    return out;
}

KeyGuard::KeyGuard(KeyGuard&& o) noexcept
    : table_(std::exchange(o.table_, nullptr)), slot_(std::exchange(o.slot_, nullptr)),
      fd_(std::exchange(o.fd_, -1)), waited_(o.waited_), recovered_from_(o.recovered_from_)
{
}

KeyGuard& KeyGuard::operator=(KeyGuard&& o) noexcept
{
    if (this != &o) {
        unlock();
        table_ = std::exchange(o.table_, nullptr);
        slot_ = std::exchange(o.slot_, nullptr);
        fd_ = std::exchange(o.fd_, -1);
        waited_ = o.waited_;
        recovered_from_ = o.recovered_from_;
    }
    return *this;
}

KeyGuard::~KeyGuard() { unlock(); }

void KeyGuard::unlock() noexcept
{
    if (!table_)
        return;
    table_->unlock(*this);
    table_ = nullptr;
    slot_ = nullptr;
    fd_ = -1;
}

} // namespace forklock
