// LockTable and KeyGuard, and the table behind them: LockTable::Impl, one TableImpl<Mode> per lock
// mode. The mode class (mode.h) is a member and its calls are inlined, so the one indirect call
// per operation is LockTable's (or KeyGuard's) into its Impl; nothing in TableImpl asks which mode
// it runs. A key goes from lock() through this file into the slot table and back; the
// bookkeeping over all keys is in table_scans.h.

#include <forklock/lock_table.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "locks/modes/flock_mode.h"
#include "locks/modes/mutex_mode.h"
#include "locks/modes/none_mode.h"
#include "locks/modes/semaphore_mode.h"
#include "locks/modes/thread_mode.h"
#include "locks/table/named_table.h"
#include "locks/table_scans.h"
#if FORKLOCK_WITH_LIBPQ
#include "locks/modes/postgres_mode.h"
#endif
#if FORKLOCK_WITH_HIREDIS
#include "locks/modes/redis_mode.h"
#endif

namespace forklock {

struct LockTable::Impl {
    explicit Impl(const LockTableOptions& o) : options(o) {}
    virtual ~Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    virtual KeyGuard acquire(std::string_view key, std::chrono::nanoseconds timeout) = 0;
    // unlock, still_held: of the guard this table made for `slot` with `handle` and `token`.
    virtual bool unlock(std::uint32_t slot, std::uint64_t handle, std::uint64_t token) noexcept = 0;
    virtual bool still_held(std::uint32_t slot, std::uint64_t handle,
                            std::uint64_t token) const noexcept = 0;
    virtual pid_t owner(std::string_view key) const = 0;
    virtual std::vector<ServerLock> server_locks(std::chrono::milliseconds timeout) const = 0;
    virtual std::size_t release_owned_by(pid_t pid) = 0;
    virtual TableStats stats() const = 0;
    virtual void raise_token_floor(std::uint64_t floor) noexcept = 0;
    virtual std::vector<KeyStats> key_stats(std::size_t limit) const = 0;

    const LockTableOptions options;
    TableOrigin origin = TableOrigin::anonymous; // set by the mode's factory

protected:
    KeyGuard guard(std::uint32_t slot, std::uint64_t handle, std::uint64_t token, bool losable,
                   std::chrono::nanoseconds waited, pid_t recovered_from) noexcept
    {
        return KeyGuard(this, slot, handle, token, losable, waited, recovered_from);
    }
};

namespace {

void validate_key(std::string_view key)
{
    if (key.empty() || key.size() > kMaxKeyLength)
        throw InvalidKeyError(
            fmt::format("a key is 1 to {} bytes, not {}", kMaxKeyLength, key.size()));
}

Deadline deadline_after(std::chrono::nanoseconds timeout) noexcept
{
    if (timeout == LockTable::kNoTimeout) return std::nullopt;
    return monotonic_ns() + std::max<std::int64_t>(timeout.count(), 0);
}

} // namespace

template <typename Mode>
class TableImpl final : public LockTable::Impl {
    static_assert(LockModeClass<Mode>, "a lock mode class: see LockModeClass in mode.h");

public:
    using Handle = typename Mode::Handle;

    explicit TableImpl(const LockTableOptions& o)
        : TableImpl(o, anonymous_table_memory(slot_bytes(o), WaitRegistry::kBytes, Mode::kSharing))
    {
    }
    // In given memory: laid out here, or (memory.attach) by the process that made it.
    TableImpl(const LockTableOptions& o, TableMemory memory)
        : Impl(o), memory_(std::move(memory)),
          mode_(ModeParts{options, slots_, waits_, memory_.attach, Mode::kPinnedByLock}),
          slots_(memory_.attach
                     ? SlotTable(SlotTable::kAttach, memory_.slots.data(),
                                 TableGeometry::for_capacity(o.capacity), mode_)
                     : SlotTable(memory_.slots.data(), TableGeometry::for_capacity(o.capacity),
                                 Mode::kMutexKind, mode_)),
          waits_(std::move(memory_.waits), memory_.attach)
    {
        origin = memory_.origin;
        publish(memory_);
    }
    static std::size_t slot_bytes(const LockTableOptions& o)
    {
        return TableGeometry::for_capacity(o.capacity).region_bytes();
    }

    KeyGuard acquire(std::string_view key, std::chrono::nanoseconds timeout) override;
    bool unlock(std::uint32_t slot, std::uint64_t handle, std::uint64_t token) noexcept override;
    bool still_held(std::uint32_t slot, std::uint64_t handle,
                    std::uint64_t token) const noexcept override;
    pid_t owner(std::string_view key) const override;
    std::vector<ServerLock> server_locks(std::chrono::milliseconds timeout) const override
    {
        if constexpr (requires { mode_.server_locks(timeout); })
            return mode_.server_locks(timeout);
        else
            return {};
    }
    std::size_t release_owned_by(pid_t pid) override
    {
        return forklock::release_owned_by(mode_, slots_, waits_, pid);
    }
    void raise_token_floor(std::uint64_t floor) noexcept override
    {
        slots_.raise_token_floor(floor);
    }
    TableStats stats() const override
    {
        return table_stats(mode_, slots_, waits_, options.capacity);
    }
    std::vector<KeyStats> key_stats(std::size_t limit) const override
    {
        return forklock::key_stats(mode_, slots_, waits_, options.capacity, limit);
    }

private:
    static constexpr bool kByLock = Mode::kPinnedByLock;
    static constexpr bool kLeased = std::is_same_v<Handle, Lease>; // the key can be lost

    SlotRef pin(std::string_view key);
    Taken<Handle> take_pinned(const SlotRef& ref, Deadline deadline, typename Mode::Early&& early);
    void record(Slot& s, const Taken<Handle>& t) noexcept;

    TableMemory memory_;
    Mode mode_;
    SlotTable slots_;
    WaitRegistry waits_;
};

// pin: the key's slot, held in place either by a reference (returned pinned) or, by lock, by the
// caller taking its lock and then checking the generation (slot_table.h).
template <typename Mode>
SlotRef TableImpl<Mode>::pin(std::string_view key)
{
    if constexpr (kByLock)
        return slots_.lookup(key);
    else
        return {&slots_.acquire_ref(key)};
}

// take_pinned: the mode's take() for a slot the caller pinned, unpinning it if take() throws.
// (Returned, not assigned inside the caller's try block, so it stays in registers.)
template <typename Mode>
Taken<typename Mode::Handle> TableImpl<Mode>::take_pinned(const SlotRef& ref, Deadline deadline,
                                                          typename Mode::Early&& early)
{
    try {
        return mode_.take(*ref.slot, ref.generation, deadline, std::move(early));
    } catch (...) {
        mode_.unpin(*ref.slot);
        throw;
    }
}

template <typename Mode>
KeyGuard TableImpl<Mode>::acquire(std::string_view key, std::chrono::nanoseconds timeout)
{
    validate_key(key);
    const Deadline deadline = deadline_after(timeout);
    for (;;) {
        typename Mode::Early early = mode_.before_pin(key); // its handle closes if pin() throws
        const SlotRef ref = pin(key);
        Slot& s = *ref.slot;
        // ref.held: the slot was bound for us by eviction, its lock handed over already.
        Taken<Handle> t =
            ref.held ? Taken<Handle>{true} : take_pinned(ref, deadline, std::move(early));
        if constexpr (kByLock) {
            if (!ref.held && !SlotTable::still_bound(ref)) {
                // The slot went to another key between lookup and lock (we may even have waited
                // on that key): the looked-up key has a slot of its own now, or none. Look again.
                if (t.ok) mode_.unlock(s, std::move(t.handle));
                continue;
            }
        }
        if (!t.ok) {
            mode_.unpin(s);
            return {};
        }
        record(s, t);
        pid_t recovered_from = t.recovered_from;
        if (!recovered_from && s.pending_recovery.load(std::memory_order_relaxed) != 0)
            recovered_from = s.pending_recovery.exchange(0, std::memory_order_relaxed);
        std::uint64_t token = t.fence;
        if constexpr (Mode::kTokens) {
            if (token == 0)
                token = mode_.grant(s, t.handle);
            else // a lock server's own token (redis): /locks shows it as the key's last
                s.fence.store(token, std::memory_order_relaxed);
        }
        return guard(slot_id(slots_, s), to_token(std::move(t.handle)), token,
                     kLeased || mode_.leases(), std::chrono::nanoseconds(t.waited_ns),
                     recovered_from);
    }
}

// record: the acquisition's statistics, on the key's slot.
template <typename Mode>
void TableImpl<Mode>::record(Slot& s, const Taken<Handle>& t) noexcept
{
    if constexpr (!Mode::kExcludes) { // nothing orders the writers: count atomically
        s.acquisitions.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    bump(s.acquisitions);
    if (!t.blocked) return;
    const auto waited = static_cast<std::uint64_t>(t.waited_ns);
    bump(s.contended);
    bump(s.wait_ns_total, waited);
    if (waited > s.wait_ns_max.load(std::memory_order_relaxed))
        s.wait_ns_max.store(waited, std::memory_order_relaxed);
}

template <typename Mode>
bool TableImpl<Mode>::unlock(std::uint32_t slot, std::uint64_t handle, std::uint64_t token) noexcept
{
    Slot& s = slots_.slot(slot);
    if constexpr (kLeased) {
        return mode_.release(s, from_token<Handle>(handle));
    } else {
        if constexpr (requires { mode_.release_fenced(s, token); })
            if (mode_.leases()) return mode_.release_fenced(s, token);
        mode_.release(s, from_token<Handle>(handle));
        return true;
    }
}

template <typename Mode>
bool TableImpl<Mode>::still_held(std::uint32_t slot, std::uint64_t handle,
                                 std::uint64_t token) const noexcept
{
    if constexpr (kLeased)
        return mode_.still_held(Lease{handle});
    else if constexpr (requires { mode_.still_held(slots_.slot(slot), token); })
        return mode_.still_held(slots_.slot(slot), token);
    else
        return true; // KeyGuard does not ask: its key cannot be lost
}

template <typename Mode>
pid_t TableImpl<Mode>::owner(std::string_view key) const
{
    if (key.empty() || key.size() > kMaxKeyLength) return 0;
    pid_t pid = 0;
    slots_.visit_bound(key, [&](const Slot& s) { pid = mode_.owner(s); });
    return pid;
}

namespace {

template <typename Mode>
std::unique_ptr<LockTable::Impl> make_table(const LockTableOptions& o)
{
    Mode::validate(o);
    using Table = TableImpl<Mode>;
    if (o.name.empty() || !facts(o.mode).can_be_named) // flock ignores a name
        return std::make_unique<Table>(o);
    return std::make_unique<Table>(
        o, named_table_memory(o, Table::slot_bytes(o), WaitRegistry::kBytes));
}

// make_mode_table: the one place that maps a LockMode to its class.
std::unique_ptr<LockTable::Impl> make_mode_table(const LockTableOptions& o)
{
    switch (o.mode) {
    case LockMode::none: return make_table<NoneMode>(o);
    case LockMode::thread: return make_table<ThreadMode>(o);
    case LockMode::semaphore: return make_table<SemaphoreMode>(o);
    case LockMode::mutex: return make_table<MutexMode>(o);
    case LockMode::flock: return make_table<FlockMode>(o);
#if FORKLOCK_WITH_LIBPQ
    case LockMode::postgres: return make_table<PostgresMode>(o);
#else
    case LockMode::postgres:
        throw std::invalid_argument(
            "postgres mode: this forklock was built without libpq (apt-get install libpq-dev, "
            "then meson setup --reconfigure build)");
#endif
#if FORKLOCK_WITH_HIREDIS
    case LockMode::redis: return make_table<RedisMode>(o);
#else
    case LockMode::redis:
        throw std::invalid_argument(
            "redis mode: this forklock was built without hiredis (apt-get install "
            "libhiredis-dev, then meson setup --reconfigure build)");
#endif
    }
    throw std::invalid_argument(fmt::format("unknown lock mode {}", static_cast<int>(o.mode)));
}

std::unique_ptr<LockTable::Impl> make_impl(const LockTableOptions& o)
{
    if (o.capacity == 0 || o.capacity > kMaxCapacity)
        throw std::invalid_argument(
            fmt::format("lock table capacity must be 1..{}, not {}", kMaxCapacity, o.capacity));
    if (o.lease_ms < 0)
        throw std::invalid_argument(
            fmt::format("a lease is a positive number of ms, not {}", o.lease_ms));
    if (o.lease_ms > 0 && !facts(o.mode).leases)
        throw std::invalid_argument(
            fmt::format("no lease in {} mode: {}", to_string(o.mode), lease_problem(o.mode)));
    if (!o.name.empty()) {
        if (auto problem = LockTable::name_problem(o.name); !problem.empty())
            throw std::invalid_argument(problem);
        if (facts(o.mode).private_memory)
            throw std::invalid_argument(
                fmt::format("a {} table lives in private memory and cannot be found by name",
                            to_string(o.mode)));
    }
    return make_mode_table(o);
}

} // namespace

LockTable::LockTable(const LockTableOptions& options) : impl_(make_impl(options)) {}
LockTable::~LockTable() = default;

LockMode LockTable::mode() const noexcept { return impl_->options.mode; }
const LockTableOptions& LockTable::options() const noexcept { return impl_->options; }
TableOrigin LockTable::origin() const noexcept { return impl_->origin; }

std::string LockTable::name_problem(std::string_view name)
{
    if (name.empty() || name.size() > kMaxNameLength)
        return fmt::format("a lock table name is 1 to {} characters, not {}", kMaxNameLength,
                           name.size());
    for (const char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return fmt::format("a lock table name is made of A-Z a-z 0-9 _ -, and '{}' has '{}'",
                               name, c);
    return "";
}

std::string LockTable::url_problem(LockMode mode, std::string_view url)
{
#if FORKLOCK_WITH_HIREDIS
    if (mode == LockMode::redis) try {
            parse_redis_url(url);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
#else
    (void)mode;
    (void)url;
#endif
    return "";
}

KeyGuard LockTable::lock(std::string_view key) { return impl_->acquire(key, kNoTimeout); }
KeyGuard LockTable::try_lock(std::string_view key)
{
    return impl_->acquire(key, std::chrono::nanoseconds(0));
}
KeyGuard LockTable::lock_for(std::string_view key, std::chrono::nanoseconds timeout)
{
    return impl_->acquire(key, timeout);
}

std::vector<ServerLock> LockTable::server_locks(std::chrono::milliseconds timeout) const
{
    return impl_->server_locks(timeout);
}
std::size_t LockTable::release_owned_by(pid_t pid) { return impl_->release_owned_by(pid); }
pid_t LockTable::owner(std::string_view key) const { return impl_->owner(key); }
TableStats LockTable::stats() const { return impl_->stats(); }
void LockTable::raise_token_floor(std::uint64_t floor) noexcept { impl_->raise_token_floor(floor); }
std::vector<KeyStats> LockTable::key_stats(std::size_t limit) const
{
    return impl_->key_stats(limit);
}

KeyGuard::KeyGuard(KeyGuard&& o) noexcept
    : table_(std::exchange(o.table_, nullptr)), slot_(o.slot_), losable_(o.losable_),
      handle_(o.handle_), token_(o.token_), waited_(o.waited_), recovered_from_(o.recovered_from_)
{
}

KeyGuard& KeyGuard::operator=(KeyGuard&& o) noexcept
{
    if (this != &o) {
        unlock();
        table_ = std::exchange(o.table_, nullptr);
        slot_ = o.slot_;
        losable_ = o.losable_;
        handle_ = o.handle_;
        token_ = o.token_;
        waited_ = o.waited_;
        recovered_from_ = o.recovered_from_;
    }
    return *this;
}

KeyGuard::~KeyGuard() { unlock(); }

bool KeyGuard::unlock() noexcept
{
    if (!table_) return true;
    return std::exchange(table_, nullptr)->unlock(slot_, handle_, token_);
}

bool KeyGuard::still_held() const noexcept
{
    return table_ != nullptr && (!losable_ || table_->still_held(slot_, handle_, token_));
}

} // namespace forklock
