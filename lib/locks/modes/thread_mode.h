#pragma once
// thread: FAILS ACROSS PROCESSES. A default pthread mutex (what std::mutex is) per slot, in
// private memory: fork() copies the table, so two workers both "hold" one key. Correct between
// the threads of one process. No holder death to recover from: a process dies with its table.

#include "locks/modes/pthread_mode.h"

namespace forklock {

class ThreadMode final
    : public PthreadMode<MutexKind::private_default, MemoryRegion::Sharing::private_copy> {
public:
    // No tokens: each process's table would hand out the same numbers.
    static constexpr bool kTokens = false;
    using PthreadMode::PthreadMode;

    void clear_dead_claim(Slot&) override {} // private memory: no other process could have died
    bool release_dead(Slot&, pid_t) noexcept { return false; }
};

} // namespace forklock
