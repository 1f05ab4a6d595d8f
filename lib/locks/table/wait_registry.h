#pragma once
// WaitRegistry: who is blocked on which slot right now, kept so that a waiter killed while blocked
// can be forgotten. (A per-slot counter cannot be: the SIGKILLed process never decrements it, and
// /locks would show a phantom waiter forever.)
//
// A fixed array of records, each one word: the waiter's pid and the slot id, set by one CAS when
// a thread starts to block and cleared when it stops. Lives in memory shared like the table's
// (MAP_SHARED for process-shared tables, MAP_PRIVATE for thread mode, a named table's object).
//
// Shared across processes and threads: every operation is lock-free and may run concurrently.
// Owner death: records stay until a supervisor that reaped the pid calls forget(pid). When every
// record is taken, enter() records nothing and that waiter is not counted (statistics only).

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "os/memory_region.h"

namespace forklock {

class WaitRegistry {
public:
    static constexpr std::size_t kRecords = 1024;
    static constexpr int kNoRecord = -1;

    static constexpr std::size_t kBytes = sizeof(std::uint64_t) * kRecords;

    explicit WaitRegistry(MemoryRegion::Sharing sharing);
    // In `region` (kBytes, zeroed when fresh); attach: another process already set it up.
    WaitRegistry(MemoryRegion region, bool attach);

    // enter: this pid waits on `slot`; returns the record to leave(), or kNoRecord if all are
    // taken.
    [[nodiscard]] int enter(pid_t pid, std::uint32_t slot) noexcept;
    void leave(int record) noexcept;
    // forget: clears every record of a dead pid; returns the slot of each, one entry per record.
    std::vector<std::uint32_t> forget(pid_t pid);
    // count_by_slot: waiters per slot id, for `slots` slots (a snapshot: records come and go).
    std::vector<std::uint32_t> count_by_slot(std::size_t slots) const;

private:
    MemoryRegion region_;
};

} // namespace forklock
