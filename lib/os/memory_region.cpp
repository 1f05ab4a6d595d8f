#include "os/memory_region.h"

#include <sys/mman.h>

#include <utility>

#include <fmt/format.h>

#include "os/os_error.h"

namespace forklock {

MemoryRegion::MemoryRegion(std::size_t size, Sharing sharing) : size_(size), sharing_(sharing)
{
    const int flags = MAP_ANONYMOUS | (sharing == Sharing::shared ? MAP_SHARED : MAP_PRIVATE);
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED)
        throw os_error(errno, "mmap(NULL, {}, PROT_READ|PROT_WRITE, {})", size,
                       sharing == Sharing::shared ? "MAP_SHARED|MAP_ANONYMOUS"
                                                  : "MAP_PRIVATE|MAP_ANONYMOUS");
    data_ = p;
}

MemoryRegion MemoryRegion::map_file(int fd, std::size_t size, off_t offset, std::string_view what)
{
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
    if (p == MAP_FAILED)
        throw os_error(errno, "mmap(NULL, {}, PROT_READ|PROT_WRITE, MAP_SHARED, {}, {})", size,
                       what, offset);
    return MemoryRegion(p, size);
}

MemoryRegion::MemoryRegion(MemoryRegion&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
      sharing_(other.sharing_)
{
}

MemoryRegion& MemoryRegion::operator=(MemoryRegion&& other) noexcept
{
    if (this != &other) {
        reset();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        sharing_ = other.sharing_;
    }
    return *this;
}

MemoryRegion::~MemoryRegion() { reset(); }

void MemoryRegion::reset() noexcept
{
    if (data_ && ::munmap(data_, size_) != 0)
        log_os_error(errno, fmt::format("munmap({}, {})", data_, size_));
    data_ = nullptr;
}

} // namespace forklock
