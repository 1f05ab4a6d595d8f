#include "app/counter_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

#include "os/os_error.h"

namespace forklock {
namespace {

bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

void write_all(int fd, std::string_view data, std::string_view name)
{
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw os_error(errno, "write({})", name);
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::optional<std::uint64_t> parse_counter(std::string_view text)
{
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

} // namespace

std::optional<std::string> key_error(std::string_view key)
{
    if (key.empty()) return "the key is empty";
    if (key.size() > kMaxCounterKeyLength)
        return fmt::format("the key is {} characters long; at most {} are allowed", key.size(),
                           kMaxCounterKeyLength);
    if (key.front() == '.') return "the key must not start with '.'";
    for (char c : key)
        if (!key_char(c)) return "the key may only contain the characters A-Z a-z 0-9 . _ -";
    return std::nullopt;
}

CounterStore::CounterStore(const std::filesystem::path& dir) : dir_(dir)
{
    dir_fd_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd_) throw os_error(errno, "open({}, O_DIRECTORY)", dir.string());
}

void CounterStore::create_directory(const std::filesystem::path& dir)
{
    std::filesystem::create_directories(dir);
}

std::uint64_t CounterStore::read(std::string_view key) const
{
    std::string name(key);
    UniqueFd fd(::openat(dir_fd_.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd && errno == ENOENT) return 0;
    if (!fd) throw os_error(errno, "open({}/{})", dir_.string(), name);
    std::array<char, 32> buf{};
    std::size_t got = 0;
    while (got < buf.size()) {
        ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw os_error(errno, "read({}/{})", dir_.string(), name);
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    auto value = parse_counter(std::string_view(buf.data(), got));
    if (!value)
        throw std::runtime_error(fmt::format("counter file {}/{} is corrupt", dir_.string(), name));
    return *value;
}

std::string CounterStore::temp_name(std::string_view key) const
{
    return fmt::format(".{}.{}.{}.tmp", key, ::getpid(), ::gettid());
}

// Swaps the files with RENAME_EXCHANGE, then unlinks the old one: as atomic as rename() over the
// key, but rename() over an existing file makes ext4 (auto_da_alloc) flush the new file's data
// first: 1.4 ms per increment on the build machine's disk, against 26 us for exchange + unlink.
void CounterStore::replace(const std::string& tmp, const std::string& name) const
{
    if (::renameat2(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), name.c_str(), RENAME_EXCHANGE) ==
        0) {
        ::unlinkat(dir_fd_.get(), tmp.c_str(), 0); // a leftover is removed by remove_temp_files()
        return;
    }
    if (errno != ENOENT && errno != EINVAL)
        throw os_error(errno, "renameat2({}, {}, RENAME_EXCHANGE)", tmp, name);
    // ENOENT: the key's first write; EINVAL: a file system without RENAME_EXCHANGE.
    if (::renameat(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), name.c_str()) != 0)
        throw os_error(errno, "rename({}, {})", tmp, name);
}

void CounterStore::write(std::string_view key, std::uint64_t value) const
{
    std::string tmp = temp_name(key);
    std::string name(key);
    UniqueFd fd(::openat(dir_fd_.get(), tmp.c_str(),
                         O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) throw os_error(errno, "open({}/{}, O_CREAT)", dir_.string(), tmp);
    try {
        write_all(fd.get(), fmt::format("{}\n", value), tmp);
        if (::close(fd.release()) != 0) throw os_error(errno, "close({})", tmp);
        replace(tmp, name);
    } catch (...) {
        ::unlinkat(dir_fd_.get(), tmp.c_str(), 0);
        throw;
    }
}

void CounterStore::check_writable() const
{
    std::string probe = fmt::format(".boot-check.{}.0.tmp", ::getpid());
    UniqueFd fd(
        ::openat(dir_fd_.get(), probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) throw os_error(errno, "open({}/{}, O_CREAT)", dir_.string(), probe);
    ::unlinkat(dir_fd_.get(), probe.c_str(), 0);
}

std::optional<pid_t> temp_file_owner(std::string_view name)
{
    constexpr std::string_view kSuffix = ".tmp";
    if (name.size() < 2 || name.front() != '.' || !name.ends_with(kSuffix)) return std::nullopt;
    name.remove_suffix(kSuffix.size());
    auto tid_dot = name.rfind('.');
    if (tid_dot == std::string_view::npos || tid_dot == 0) return std::nullopt;
    auto pid_dot = name.rfind('.', tid_dot - 1);
    if (pid_dot == std::string_view::npos || pid_dot == 0) return std::nullopt;
    auto pid_text = name.substr(pid_dot + 1, tid_dot - pid_dot - 1);
    pid_t pid = 0;
    auto [end, ec] = std::from_chars(pid_text.data(), pid_text.data() + pid_text.size(), pid);
    if (ec != std::errc() || end != pid_text.data() + pid_text.size() || pid <= 0)
        return std::nullopt;
    return pid;
}

std::size_t CounterStore::remove_temp_files(std::optional<pid_t> pid) const noexcept
{
    int fd = ::openat(dir_fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = fd < 0 ? nullptr : ::fdopendir(fd);
    if (d == nullptr) {
        if (fd >= 0) ::close(fd);
        return 0;
    }
    std::size_t removed = 0;
    while (dirent* e = ::readdir(d)) {
        auto owner = temp_file_owner(e->d_name);
        if (!owner || (pid && *owner != *pid)) continue;
        if (::unlinkat(dir_fd_.get(), e->d_name, 0) == 0) ++removed;
    }
    ::closedir(d);
    return removed;
}

} // namespace forklock
