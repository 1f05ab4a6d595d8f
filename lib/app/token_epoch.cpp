#include "app/token_epoch.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <string>

#include <fmt/format.h>

#include "os/os_error.h"
#include "os/unique_fd.h"

namespace forklock {

std::uint64_t advance_token_epoch(const std::filesystem::path& data_dir)
{
    const std::filesystem::path file = data_dir / ".fence-epoch";
    UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw os_error(errno, "open({}, O_CREAT)", file.string());
    if (::flock(fd.get(), LOCK_EX) != 0) throw os_error(errno, "flock({})", file.string());
    std::array<char, 32> buf{};
    const ssize_t got = ::pread(fd.get(), buf.data(), buf.size() - 1, 0);
    if (got < 0) throw os_error(errno, "pread({})", file.string());
    std::uint64_t epoch = 0;
    std::from_chars(buf.data(), buf.data() + got, epoch); // empty or garbage: epoch 0
    ++epoch;
    const std::string text = fmt::format("{}\n", epoch);
    if (::pwrite(fd.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()) ||
        ::ftruncate(fd.get(), static_cast<off_t>(text.size())) != 0 || ::fsync(fd.get()) != 0)
        throw os_error(errno, "write+fsync({})", file.string());
    return epoch * kTokensPerEpoch;
}

} // namespace forklock
