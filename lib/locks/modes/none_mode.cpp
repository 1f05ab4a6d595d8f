// none: no lock at all. lock() never blocks and excludes nobody; for the demonstration only.
// Slots are pinned by reference, so a key's statistics stay its own while someone is inside.

#include "locks/modes/modes.h"
#include "locks/modes/table_impl.h"

namespace forklock {
namespace {

class NoneMode final : public ModeBase, public SlotLocks {
public:
    static constexpr bool kPinnedByLock = false;
    static constexpr bool kExcludes = false;
    static constexpr MemoryRegion::Sharing kSharing = MemoryRegion::Sharing::private_copy;
    static constexpr MutexKind kMutexKind = MutexKind::private_default;
    using Handle = NoHandle;
    using Early = NoEarly;

    using ModeBase::ModeBase;
    static void validate(const LockTableOptions&) {}

    bool pinned_by_lock() const override { return kPinnedByLock; }
    bool claim(Slot& s) override { return s.refs.load(std::memory_order_seq_cst) == 0; }
    void hand_over(Slot&) override {}
    void unclaim(Slot&) noexcept override {}
    void clear_dead_claim(Slot&) override {}

    Early before_pin(std::string_view) noexcept { return {}; }
    Taken<Handle> take(Slot&, std::uint32_t, Deadline, Early&&) noexcept { return {true}; }
    void unlock(Slot&, Handle&&) noexcept {}
    void release(Slot& s, Handle&&) noexcept { unpin(s); }
    void unpin(Slot& s) noexcept { parts_.slots.release_ref(s); }
    bool release_dead(Slot&, pid_t) noexcept { return false; }
    pid_t owner(const Slot&) const noexcept { return 0; }
};

} // namespace

std::unique_ptr<LockTable::Impl> make_none_table(const LockTableOptions& o)
{
    NoneMode::validate(o);
    return std::make_unique<TableImpl<NoneMode>>(o);
}

} // namespace forklock
