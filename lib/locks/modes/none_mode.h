#pragma once
// none: FAILS EVERYWHERE. lock() never blocks and excludes nobody: for the demonstration only.
// Private memory. Slots are pinned by reference, so a key's statistics stay its own while someone
// is inside. Nothing to recover when a holder dies: it held nothing.

#include "locks/modes/mode.h"

namespace forklock {

class NoneMode final : public ModeBase {
public:
    static constexpr bool kExcludes = false;
    static constexpr bool kTokens = false; // nothing is granted: no order to fence
    static constexpr MemoryRegion::Sharing kSharing = MemoryRegion::Sharing::private_copy;
    static constexpr MutexKind kMutexKind = MutexKind::private_default;
    using ModeBase::ModeBase;

    Taken<Handle> take(Slot&, std::uint32_t, Deadline, Early&&) noexcept { return {true}; }
};

} // namespace forklock
