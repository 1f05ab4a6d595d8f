#pragma once
// Table: the C++ LockTable as the Python module holds it. Shared, across processes and threads,
// exactly as lock_table.h says for its mode; this layer adds only what Python needs:
//  - waits release the GIL, in slices, so Ctrl-C (KeyboardInterrupt) ends a wait;
//  - close() frees the table now (a named table's last user unlinks its names) and refuses while
//    this process holds a key of it;
//  - the pid that made it, for the fork checks of the guards and the gunicorn helpers.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <sys/types.h>

#include "facade.h"

namespace forklock::python {

// Acquired: a key held (guard non-empty), or an empty guard when the timeout passed first.
struct Acquired {
    KeyGuard guard;
    std::chrono::nanoseconds waited{0}; // the whole wait, every slice of it
};

class Table {
public:
    // How long a waiter sleeps in the lock library before it looks for a pending signal (with
    // the GIL). A wait still ends at once when the holder unlocks: each slice blocks on the
    // mode's own semaphore or mutex; this only bounds how late Ctrl-C is seen.
    static constexpr std::chrono::milliseconds kSignalSlice{50};

    // Made closed, then opened: a constructor that throws would leave pybind11 an instance
    // without its C++ object, which a traceback's repr() then touches. A table whose open()
    // failed is simply closed.
    Table() = default;
    void open(const LockTableOptions& options);

    // acquire: the key within `timeout` (nullopt: for ever). Call with the GIL held; it is held
    // for an uncontended try and released while waiting. Throws py::error_already_set when a
    // signal handler raised (KeyboardInterrupt), and the library's errors.
    Acquired acquire(std::string_view key, std::optional<std::chrono::nanoseconds> timeout);
    // unlock: lets the key go (the GIL released for postgres, whose unlock is a round trip).
    bool unlock(KeyGuard& guard);

    LockTable& get(); // throws ValueError once closed
    const LockTable& get() const;
    bool closed() const noexcept { return table_ == nullptr; }
    void close();
    pid_t maker_pid() const noexcept { return maker_pid_; }

    // The keys this process holds through guards (a fork child counts none of its parent's).
    void count_held(int delta) noexcept;
    int held_here() const noexcept;

private:
    std::optional<KeyGuard> wait_in_slices(std::string_view key,
                                           std::optional<std::chrono::nanoseconds> timeout,
                                           std::chrono::steady_clock::time_point start);
    std::unique_ptr<LockTable> table_;
    pid_t maker_pid_ = 0;
    int held_ = 0;
    pid_t held_pid_ = 0;
};

} // namespace forklock::python
