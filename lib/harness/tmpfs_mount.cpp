#include "harness/tmpfs_mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "os/os_error.h"
#include "os/unique_fd.h"

namespace forklock::harness {

TmpfsMount::TmpfsMount(std::size_t bytes) : dir_("forklock-tmpfs")
{
    const std::string data = fmt::format("size={},mode=0700", bytes);
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str()) == 0) {
        mounted_ = true;
        return;
    }
    why_not_ = fmt::format("mount(tmpfs, {}) failed: {}: a full disk needs a small tmpfs, "
                           "which only root (CAP_SYS_ADMIN) may mount",
                           dir_.path().string(), std::strerror(errno));
}

TmpfsMount::~TmpfsMount()
{
    if (mounted_ && ::umount2(dir_.path().c_str(), MNT_DETACH) != 0)
        log_os_error(errno, "umount2(tmpfs, MNT_DETACH)");
    // dir_ then removes the (now empty) mount point.
}

std::size_t TmpfsMount::fill(const std::string& file) const
{
    const auto path = dir_.path() / file;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd) throw os_error(errno, "open({})", path.string());
    const std::vector<char> block(4096, 'x');
    std::size_t total = 0;
    for (;;) {
        const ssize_t n = ::write(fd.get(), block.data(), block.size());
        if (n > 0) {
            total += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != ENOSPC) throw os_error(errno, "write({})", path.string());
        return total;
    }
}

} // namespace forklock::harness
