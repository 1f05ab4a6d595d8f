#pragma once
// MemoryRegion: one anonymous mmap(), unmapped by the destructor.
//
// shared: MAP_SHARED | MAP_ANONYMOUS. A child forked after the mapping sees the same pages, so it
//   is the meeting point for process-shared locks. It has no name: nothing appears in /dev/shm and
//   nothing can be left behind when every process that mapped it has exited.
// private_copy: MAP_PRIVATE | MAP_ANONYMOUS. fork() gives each child a copy-on-write copy, which is
//   exactly what private memory (a std::mutex, a threading.Lock) does across fork.
//
// map_file: MAP_SHARED of an open file (a shared memory object, shared_memory_object.h): every
//   process that maps the same file sees the same pages, inherited or not.
//
// Move-only. Thread-safe to read and write through data() like any memory; the object itself is not
// synchronised.

#include <cstddef>
#include <string_view>
#include <sys/types.h>

namespace forklock {

class MemoryRegion {
public:
    enum class Sharing { shared, private_copy };

    // Maps `size` zeroed bytes. Throws std::system_error("mmap(...) failed").
    MemoryRegion(std::size_t size, Sharing sharing);
    // Maps `size` bytes of `fd` at `offset` (page-aligned), MAP_SHARED; `what` names the file in
    // the error. Throws std::system_error("mmap(...) failed").
    static MemoryRegion map_file(int fd, std::size_t size, off_t offset, std::string_view what);
    MemoryRegion(MemoryRegion&& other) noexcept;
    MemoryRegion& operator=(MemoryRegion&& other) noexcept;
    MemoryRegion(const MemoryRegion&) = delete;
    MemoryRegion& operator=(const MemoryRegion&) = delete;
    ~MemoryRegion();

    void* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    Sharing sharing() const noexcept { return sharing_; }

private:
    MemoryRegion(void* data, std::size_t size) noexcept : data_(data), size_(size) {}
    void reset() noexcept;
    void* data_ = nullptr;
    std::size_t size_ = 0;
    Sharing sharing_ = Sharing::shared;
};

} // namespace forklock
