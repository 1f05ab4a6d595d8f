#pragma once
// racy_increments: `n` increments of `counter` done as a plain read, yield, write (so two
// unordered writers lose updates), each under `key`'s lock in a table made here with `o`. For a
// forked child of a test that counts whether a mode's tables, made after fork, exclude each
// other: every increment is kept only if they do. Returns 0 (a Child's exit code).

#include <atomic>
#include <string_view>
#include <thread>

#include <forklock/lock_table.h>

namespace forklock::harness {

inline int racy_increments(const LockTableOptions& o, std::atomic<int>& counter, int n,
                           std::string_view key = "counter")
{
    LockTable own(o);
    for (int i = 0; i < n; ++i) {
        KeyGuard g = own.lock(key);
        const int v = counter.load();
        std::this_thread::yield();
        counter.store(v + 1);
    }
    return 0;
}

} // namespace forklock::harness
