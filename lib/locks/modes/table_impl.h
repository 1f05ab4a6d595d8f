#pragma once
// LockTable::Impl: the table behind LockTable, one TableImpl<Mode> per lock mode. The mode class
// (mode.h) is a member and its calls are inlined, so the one indirect call per operation is
// LockTable's into its Impl; nothing here asks which mode it runs.

#include <algorithm>
#include <chrono>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "locks/modes/mode.h"
#include "locks/table/named_table.h"

namespace forklock {

struct LockTable::Impl {
    explicit Impl(const LockTableOptions& o) : options(o) {}
    virtual ~Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    virtual KeyGuard acquire(LockTable& table, std::string_view key,
                             std::chrono::nanoseconds timeout) = 0;
    virtual bool unlock(KeyGuard& guard) noexcept = 0;
    virtual bool still_held(const KeyGuard& guard) const noexcept = 0;
    virtual std::vector<ServerLock> server_locks(std::chrono::milliseconds timeout) const = 0;
    virtual std::size_t release_owned_by(pid_t pid) = 0;
    virtual TableStats stats() const = 0;
    virtual std::vector<KeyStats> key_stats(std::size_t limit) const = 0;
    virtual pid_t owner(std::string_view key) const = 0;

    const LockTableOptions options;
    TableOrigin origin = TableOrigin::anonymous; // set by the mode's factory
};

inline void validate_key(std::string_view key)
{
    if (key.empty() || key.size() > LockTable::kMaxKeyLength)
        throw InvalidKeyError(
            fmt::format("a key is 1 to {} bytes, not {}", LockTable::kMaxKeyLength, key.size()));
}

inline Deadline deadline_after(std::chrono::nanoseconds timeout) noexcept
{
    if (timeout == LockTable::kNoTimeout) return std::nullopt;
    return monotonic_ns() + std::max<std::int64_t>(timeout.count(), 0);
}

template <typename Mode>
class TableImpl final : public LockTable::Impl {
public:
    using Handle = typename Mode::Handle;

    explicit TableImpl(const LockTableOptions& o)
        : TableImpl(o, anonymous_table_memory(slot_bytes(o), WaitRegistry::kBytes, Mode::kSharing))
    {
    }
    // In given memory: laid out here, or (memory.attach) by the process that made it.
    TableImpl(const LockTableOptions& o, TableMemory memory)
        : Impl(o), memory_(std::move(memory)),
          mode_(ModeParts{options, slots_, waits_, memory_.attach}),
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

    KeyGuard acquire(LockTable& table, std::string_view key,
                     std::chrono::nanoseconds timeout) override;
    bool unlock(KeyGuard& g) noexcept override
    {
        if constexpr (kLeased) {
            return mode_.release(*g.slot_, Lease{g.lease_});
        } else {
            mode_.release(*g.slot_, handle_from(g.fd_));
            return true;
        }
    }
    bool still_held(const KeyGuard& g) const noexcept override
    {
        if constexpr (kLeased)
            return mode_.still_held(Lease{g.lease_});
        else
            return true; // KeyGuard does not ask: its lease is 0
    }
    std::vector<ServerLock> server_locks(std::chrono::milliseconds timeout) const override
    {
        if constexpr (requires { mode_.server_locks(timeout); })
            return mode_.server_locks(timeout);
        else
            return {};
    }
    std::size_t release_owned_by(pid_t pid) override;
    TableStats stats() const override;
    std::vector<KeyStats> key_stats(std::size_t limit) const override;
    pid_t owner(std::string_view key) const override;

private:
    static constexpr bool kByLock = Mode::kPinnedByLock;
    static constexpr bool kLeased = std::is_same_v<Handle, Lease>; // the key can be lost

    static Handle handle_from(UniqueFd& fd) noexcept
    {
        if constexpr (std::is_same_v<Handle, UniqueFd>)
            return std::move(fd);
        else
            return Handle{};
    }
    static UniqueFd fd_from(Handle&& h) noexcept
    {
        if constexpr (std::is_same_v<Handle, UniqueFd>)
            return std::move(h);
        else
            return UniqueFd{};
    }
    static std::uint64_t lease_from(const Handle& h) noexcept
    {
        if constexpr (kLeased)
            return h.session;
        else
            return 0;
    }

    // pin: the key's slot, held in place either by a reference (returned pinned) or, by lock, by
    // the caller taking its lock and then checking the generation (slot_table.h).
    SlotRef pin(std::string_view key)
    {
        if constexpr (kByLock)
            return slots_.lookup(key);
        else
            return {&slots_.acquire_ref(key)};
    }
    Taken<Handle> take_pinned(const SlotRef& ref, Deadline deadline, typename Mode::Early&& early);
    void record(Slot& s, const Taken<Handle>& t) noexcept;
    bool busy(const Slot& s, std::uint32_t waiters) const noexcept
    {
        if constexpr (kByLock)
            return mode_.owner(s) != 0 || waiters != 0;
        else
            return s.refs.load(std::memory_order_relaxed) != 0;
    }
    std::uint32_t id_of(const Slot& s) const noexcept
    {
        return static_cast<std::uint32_t>(&s - &slots_.slot(0));
    }

    TableMemory memory_;
    Mode mode_;
    SlotTable slots_;
    WaitRegistry waits_;
};

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
KeyGuard TableImpl<Mode>::acquire(LockTable& table, std::string_view key,
                                  std::chrono::nanoseconds timeout)
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
        const std::uint64_t lease = lease_from(t.handle);
        return KeyGuard(&table, &s, fd_from(std::move(t.handle)), lease,
                        std::chrono::nanoseconds(t.waited_ns), recovered_from);
    }
}

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
std::size_t TableImpl<Mode>::release_owned_by(pid_t pid)
{
    if (pid <= 0) return 0;
    std::vector<Slot*> owned;
    slots_.for_each_bound([&](const Slot& s) {
        if (mode_.owner(s) == pid) owned.push_back(const_cast<Slot*>(&s));
    });
    std::size_t freed = 0;
    for (Slot* s : owned) freed += mode_.release_dead(*s, pid) ? 1 : 0;
    // And it waits on nothing any more. By reference, each wait also held a reference to its
    // slot, taken before the record and dropped after it: return those too, or the slot could
    // never be reused.
    for (const std::uint32_t slot : waits_.forget(pid)) mode_.unpin(slots_.slot(slot));
    return freed;
}

template <typename Mode>
TableStats TableImpl<Mode>::stats() const
{
    TableStats t = slots_.stats();
    t.shared = Mode::kSharing == MemoryRegion::Sharing::shared;
    const auto waiters = waits_.count_by_slot(options.capacity);
    slots_.for_each_bound([&](const Slot& s) { t.active += busy(s, waiters[id_of(s)]) ? 1 : 0; });
    return t;
}

template <typename Mode>
std::vector<KeyStats> TableImpl<Mode>::key_stats(std::size_t limit) const
{
    std::vector<KeyStats> out;
    const auto waiters = waits_.count_by_slot(options.capacity);
    slots_.for_each_bound([&](const Slot& s) {
        KeyStats k;
        k.key.assign(s.key_view());
        k.owner_pid = mode_.owner(s);
        k.waiters = waiters[id_of(s)];
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
    if (limit && out.size() > limit) out.resize(limit);
    return out;
}

template <typename Mode>
pid_t TableImpl<Mode>::owner(std::string_view key) const
{
    if (key.empty() || key.size() > LockTable::kMaxKeyLength) return 0;
    pid_t pid = 0;
    slots_.visit_bound(key, [&](const Slot& s) { pid = mode_.owner(s); });
    return pid;
}

} // namespace forklock
