#include "locks/primitives/key_file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "os/monotonic_clock.h"
#include "os/os_error.h"

namespace forklock {
namespace {

bool safe_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

} // namespace

UniqueFd open_lock_file(const std::filesystem::path& file)
{
    for (;;) {
        UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (fd) return fd;
        if (errno != EINTR)
            throw os_error(errno, "open(\"{}\", O_RDWR|O_CREAT|O_CLOEXEC, 0600)", file.string());
    }
}

bool try_lock_file(const UniqueFd& fd, const std::filesystem::path& file)
{
    for (;;) {
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return true;
        if (errno == EWOULDBLOCK) return false;
        if (errno != EINTR) throw os_error(errno, "flock(\"{}\", LOCK_EX|LOCK_NB)", file.string());
    }
}

namespace {

void blocking_flock(const UniqueFd& fd, const std::filesystem::path& file)
{
    while (::flock(fd.get(), LOCK_EX) != 0)
        if (errno != EINTR) throw os_error(errno, "flock(\"{}\", LOCK_EX)", file.string());
}

bool flock_until(const UniqueFd& fd, const std::filesystem::path& file, std::int64_t deadline)
{
    std::int64_t pause = 50'000;
    while (!try_lock_file(fd, file)) {
        const std::int64_t left = deadline - monotonic_ns();
        if (left <= 0) return false;
        std::this_thread::sleep_for(std::chrono::nanoseconds(std::min(pause, left)));
        pause = std::min<std::int64_t>(pause * 2, 5'000'000);
    }
    return true;
}

} // namespace

std::string lock_file_name(std::string_view key)
{
    std::string name;
    for (std::size_t i = 0; i < key.size(); ++i) {
        const auto c = static_cast<unsigned char>(key[i]);
        if (safe_char(c) || (c == '.' && i > 0))
            name += static_cast<char>(c);
        else
            name += fmt::format("%{:02X}", c);
    }
    return name + ".lock";
}

bool lock_file_until(const UniqueFd& fd, const std::filesystem::path& file,
                     std::optional<std::int64_t> deadline)
{
    if (deadline) return flock_until(fd, file, *deadline);
    blocking_flock(fd, file);
    return true;
}

bool lock_file_is_linked(const UniqueFd& fd, const std::filesystem::path& file)
{
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw os_error(errno, "fstat(\"{}\")", file.string());
    return st.st_nlink > 0;
}

KeyFile lock_key_file(const std::filesystem::path& file, std::optional<std::int64_t> deadline,
                      UniqueFd fd)
{
    for (;;) {
        if (!fd) fd = open_lock_file(file);
        // A throw closes fd (it is ours), so nothing is left open.
        const bool locked = lock_file_until(fd, file, deadline);
        if (!locked || lock_file_is_linked(fd, file)) return {std::move(fd), locked};
        unlock_and_close(std::move(fd)); // removed while we waited: lock the current file
    }
}

void remove_lock_file_if_free(const std::filesystem::path& file) noexcept
{
    UniqueFd fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) {
        if (errno != ENOENT) log_os_error(errno, "open(lock file to remove)");
        return;
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0 &&
        raise_token_floor(file.parent_path(), read_token(fd)) && ::unlink(file.c_str()) != 0 &&
        errno != ENOENT)
        log_os_error(errno, "unlink(lock file)");
    unlock_and_close(std::move(fd));
}

std::uint64_t read_token(const UniqueFd& fd) noexcept
{
    std::uint64_t token = 0;
    const ssize_t got = ::pread(fd.get(), &token, sizeof token, 0);
    if (got < 0) log_os_error(errno, "pread(lock file token)");
    return got == sizeof token ? token : 0;
}

bool write_token(const UniqueFd& fd, std::uint64_t token) noexcept
{
    if (::pwrite(fd.get(), &token, sizeof token, 0) == sizeof token) return true;
    log_os_error(errno, "pwrite(lock file token)");
    return false;
}

namespace {
std::filesystem::path floor_file(const std::filesystem::path& dir) { return dir / ".fence"; }
} // namespace

std::uint64_t token_floor(const std::filesystem::path& dir) noexcept
{
    UniqueFd fd(::open(floor_file(dir).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return 0;
    if (::flock(fd.get(), LOCK_SH) != 0) log_os_error(errno, "flock(.fence, LOCK_SH)");
    const std::uint64_t floor = read_token(fd);
    unlock_and_close(std::move(fd));
    return floor;
}

bool raise_token_floor(const std::filesystem::path& dir, std::uint64_t token) noexcept
{
    if (token == 0) return true;
    UniqueFd fd(::open(floor_file(dir).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd || ::flock(fd.get(), LOCK_EX) != 0) {
        log_os_error(errno, "open+flock(.fence)");
        return false;
    }
    const bool ok = read_token(fd) >= token || write_token(fd, token);
    unlock_and_close(std::move(fd));
    return ok;
}

void unlock_and_close(UniqueFd fd) noexcept
{
    if (fd && ::close(fd.release()) != 0) log_os_error(errno, "close(lock file)");
}

} // namespace forklock
