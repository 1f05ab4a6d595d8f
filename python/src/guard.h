#pragma once
// Guard: one key of one table, as `with table.lock(key) as guard:` uses it. Entering the block
// locks the key (table.try_lock() returns a guard that already holds it); leaving unlocks it. A
// guard may be entered again after it let go; entering one that holds its key raises
// RuntimeError (the locks are not reentrant: the C++ table would deadlock).
//
// Who may use it: the process and thread that locked it. A fork child's copy is not a holder:
// unlock, __exit__ and still_held raise RuntimeError there, and never call the lock library;
// its destruction in the child leaves the parent's key alone. Another thread: RuntimeError too.
// A held guard that is garbage-collected in its own process unlocks its key.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <thread>

#include <pybind11/pybind11.h>

#include "table.h"

namespace forklock::python {

class Guard {
public:
    Guard(pybind11::object table_object, Table& table, pybind11::object key, std::string bytes,
          std::optional<std::chrono::nanoseconds> timeout);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

    // lock: blocks (timeout: TimeoutError) until the key is held. try_lock: false if busy.
    void lock();
    bool try_lock();
    // unlock: false when the key was lost while held (postgres mode). RuntimeError if not held.
    bool unlock();
    // exit: __exit__; raises LockLostError for a lost key unless the block already raised.
    void exit(bool block_raised);
    void enter(); // __enter__: lock() unless try_lock() already holds it unentered
    bool still_held();
    bool held() const noexcept;

    pybind11::object key() const { return key_; }
    double waited() const noexcept;
    pybind11::object recovered_from() const;
    pybind11::object pid() const;

private:
    void check_holder(const char* action) const;
    void took(Acquired acquired);
    pybind11::object table_object_; // keeps the table alive while the guard is
    Table& table_;
    pybind11::object key_;
    std::string bytes_;
    std::optional<std::chrono::nanoseconds> timeout_;
    std::unique_ptr<KeyGuard> held_; // null unless held; leaked (never unlocked) in a fork child
    bool entered_ = false;
    pid_t pid_ = 0;
    std::thread::id thread_;
    std::chrono::nanoseconds waited_{0};
    pid_t recovered_from_ = 0;
};

} // namespace forklock::python
