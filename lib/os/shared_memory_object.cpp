#include "os/shared_memory_object.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "os/os_error.h"

namespace forklock {
namespace {

std::optional<UniqueFd> shm_open_or_none(const std::string& name, int flags, int missing_errno)
{
    for (;;) {
        const int fd = ::shm_open(name.c_str(), flags, 0600);
        if (fd >= 0) return UniqueFd(fd);
        if (errno == missing_errno) return std::nullopt;
        if (errno != EINTR)
            throw os_error(errno, "shm_open(\"{}\", {}, 0600)", name,
                           flags & O_EXCL                    ? "O_RDWR|O_CREAT|O_EXCL"
                           : (flags & O_ACCMODE) == O_RDONLY ? "O_RDONLY"
                                                             : "O_RDWR");
    }
}

} // namespace

std::optional<SharedMemoryObject> SharedMemoryObject::create(const std::string& name)
{
    auto fd = shm_open_or_none(name, O_RDWR | O_CREAT | O_EXCL, EEXIST);
    if (!fd) return std::nullopt;
    return SharedMemoryObject(name, std::move(*fd));
}

std::optional<SharedMemoryObject> SharedMemoryObject::open(const std::string& name)
{
    auto fd = shm_open_or_none(name, O_RDWR, ENOENT);
    if (!fd) return std::nullopt;
    return SharedMemoryObject(name, std::move(*fd));
}

bool SharedMemoryObject::remove(const std::string& name) noexcept
{
    return ::shm_unlink(name.c_str()) == 0;
}

void SharedMemoryObject::resize(std::size_t bytes)
{
    if (::ftruncate(fd_.get(), static_cast<off_t>(bytes)) != 0)
        throw os_error(errno, "ftruncate(shm \"{}\", {})", name_, bytes);
}

std::size_t SharedMemoryObject::size() const
{
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) throw os_error(errno, "fstat(shm \"{}\")", name_);
    return static_cast<std::size_t>(st.st_size);
}

bool SharedMemoryObject::still_named() const
{
    struct stat mine {
    }, named{};
    if (::fstat(fd_.get(), &mine) != 0) throw os_error(errno, "fstat(shm \"{}\")", name_);
    auto now = shm_open_or_none(name_, O_RDONLY, ENOENT);
    if (!now) return false;
    if (::fstat(now->get(), &named) != 0) throw os_error(errno, "fstat(shm \"{}\")", name_);
    return mine.st_dev == named.st_dev && mine.st_ino == named.st_ino;
}

MemoryRegion SharedMemoryObject::map(std::size_t bytes, off_t offset) const
{
    return MemoryRegion::map_file(fd_.get(), bytes, offset, name_);
}

bool SharedMemoryObject::flock_op(int operation, const char* text)
{
    for (;;) {
        if (::flock(fd_.get(), operation) == 0) return true;
        if (errno == EWOULDBLOCK && (operation & LOCK_NB)) return false;
        if (errno != EINTR) throw os_error(errno, "flock(shm \"{}\", {})", name_, text);
    }
}

void SharedMemoryObject::lock_shared() { flock_op(LOCK_SH, "LOCK_SH"); }
bool SharedMemoryObject::try_lock_exclusive()
{
    return flock_op(LOCK_EX | LOCK_NB, "LOCK_EX|LOCK_NB");
}
void SharedMemoryObject::lock_exclusive() { flock_op(LOCK_EX, "LOCK_EX"); }

} // namespace forklock
