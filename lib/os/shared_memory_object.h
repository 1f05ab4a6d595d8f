#pragma once
// SharedMemoryObject: one shm_open()ed POSIX shared memory object (/dev/shm/NAME), its fd closed
// by the destructor. The name outlives every handle until remove() unlinks it, so it is the
// meeting point of processes that did not inherit each other's memory.
//
// Shared across processes: yes, by name (and a child forked after the open inherits the same open
// file description, so the same flock). Across threads: the handle is not synchronised.
// The flock calls lock this handle's open file description: two handles, even in one process,
// exclude each other; a forked child holding the inherited fd keeps the lock alive while it lives.
// Owner death: the kernel drops its flock with its last fd; the name stays until remove().
// create() uses O_CREAT|O_EXCL, mode 0600. Nothing here unlinks on destruction: remove() does.

#include <cstddef>
#include <optional>
#include <string>
#include <sys/types.h>

#include "os/memory_region.h"
#include "os/unique_fd.h"

namespace forklock {

class SharedMemoryObject {
public:
    // create: a new, empty object, or nullopt if `name` exists. open: the existing object, or
    // nullopt if there is none. Other failures throw std::system_error("shm_open(...) failed").
    static std::optional<SharedMemoryObject> create(const std::string& name);
    static std::optional<SharedMemoryObject> open(const std::string& name);
    // remove: unlinks `name`; true if it existed. Never throws.
    static bool remove(const std::string& name) noexcept;

    const std::string& name() const noexcept { return name_; }
    // resize: ftruncate(); new bytes read as zero. size: fstat()'s st_size.
    void resize(std::size_t bytes);
    std::size_t size() const;
    // still_named: whether name() still leads to this very object (not unlinked, not replaced).
    bool still_named() const;
    // map: `bytes` at `offset` (a multiple of the page size), MAP_SHARED.
    MemoryRegion map(std::size_t bytes, off_t offset) const;

    // flock(2) on this handle. lock_shared blocks (EINTR retried); the try_ calls return false
    // when another handle holds a conflicting lock. Converting a held lock is not atomic in
    // Linux: a failed try_lock_exclusive() may leave this handle holding nothing.
    void lock_shared();
    [[nodiscard]] bool try_lock_exclusive();
    void lock_exclusive();

private:
    SharedMemoryObject(std::string name, UniqueFd fd) : name_(std::move(name)), fd_(std::move(fd))
    {
    }
    bool flock_op(int operation, const char* text);
    std::string name_;
    UniqueFd fd_;
};

} // namespace forklock
