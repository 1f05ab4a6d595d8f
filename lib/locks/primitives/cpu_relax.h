#pragma once
// cpu_relax: the pause a spinning waiter makes between two looks at a lock word, so it yields the
// core's pipeline (and an SMT sibling) to the holder it waits for.

namespace forklock {

inline void cpu_relax() noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

} // namespace forklock
