#pragma once
// SharedBlock<T>: one T in anonymous MAP_SHARED memory, made before fork, so a test (or a tool)
// and the children it forks read and write the same T. T must be valid zero-filled and need no
// destructor (atomics, plain numbers): it is never constructed or destroyed, only mapped. The
// mapping goes with the last process that has it. Not copyable; thread-safe as T is.

#include <type_traits>

#include "os/memory_region.h"

namespace forklock::harness {

template <typename T>
class SharedBlock {
    static_assert(std::is_trivially_destructible_v<T>, "a SharedBlock is never destroyed");

public:
    SharedBlock() : region_(sizeof(T), MemoryRegion::Sharing::shared) {}
    T& operator*() const { return *static_cast<T*>(region_.data()); }
    T* operator->() const { return static_cast<T*>(region_.data()); }

private:
    MemoryRegion region_;
};

} // namespace forklock::harness
