#include "app/counter_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <system_error>
#include <stdexcept>

#include <fmt/format.h>

#include "app/client_error.h"
#include "os/os_error.h"

namespace forklock {
namespace {

bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

// One pread() or pwrite() of a few bytes at `offset`: a regular file moves them whole, or fails.
template <typename Io>
std::size_t io_at(Io io, int fd, char* data, std::size_t size, off_t offset)
{
    for (;;) {
        ssize_t n = io(fd, data, size, offset);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno != EINTR) return SIZE_MAX;
    }
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

CounterStore::SharedFd CounterStore::open_file(const std::string& name) const
{
    std::lock_guard lock(files_mutex_);
    if (auto it = files_.find(name); it != files_.end()) return it->second;
    UniqueFd fd(::openat(dir_fd_.get(), name.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!fd && errno == ENOENT) return nullptr;
    if (!fd) throw failure(errno, "open", name, ", O_RDWR", "open counter", name);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw failure(errno, "fstat", name, "", "open counter", name);
    if (!S_ISREG(st.st_mode))
        throw StoreError(
            0, fmt::format("counter file {}/{} is not a regular file", dir_.string(), name),
            fmt::format("counter '{}': its file is not a regular file", name));
    if (files_.size() >= kMaxOpenFiles) files_.clear();
    return files_.emplace(name, std::make_shared<const UniqueFd>(std::move(fd))).first->second;
}

// A read can only find no valid slot if two whole writes of the key overlap its copy: retried.
counter_file::State CounterStore::load(int fd, const std::string& name) const
{
    std::array<char, counter_file::kFencedFileSize> buf{};
    for (int attempt = 0; attempt < 3; ++attempt) {
        std::size_t n = io_at(::pread, fd, buf.data(), buf.size(), 0);
        if (n == SIZE_MAX) throw failure(errno, "pread", name, "", "read counter", name);
        if (auto state = counter_file::decode_file(std::string_view(buf.data(), n))) return *state;
    }
    throw StoreError(0, fmt::format("counter file {}/{} is corrupt", dir_.string(), name),
                     fmt::format("counter '{}': its file is corrupt (left as it is)", name));
}

std::uint64_t CounterStore::read(std::string_view key) const
{
    std::string name(key);
    auto fd = open_file(name);
    return fd ? load(fd->get(), name).value : 0;
}

void CounterStore::write(std::string_view key, std::uint64_t value) const
{
    Pending p = begin_update(key);
    finish_update(p, value);
}

CounterStore::Pending CounterStore::begin_update(std::string_view key) const
{
    Pending p{std::string(key), nullptr, {}};
    p.fd = open_file(p.name);
    if (p.fd) p.state = load(p.fd->get(), p.name);
    return p;
}

void CounterStore::finish_update(Pending& p, std::uint64_t value, std::uint64_t token) const
{
    if (!p.fd) {
        if (create_file(p.name, value)) return;
        p.fd = open_file(p.name); // created by another process meanwhile: update it in place
        if (!p.fd) throw failure(ENOENT, "open", p.name, ", O_RDWR", "open counter", p.name);
        p.state = load(p.fd->get(), p.name);
    }
    const std::size_t at = counter_file::next_slot(p.state, token != 0);
    auto slot =
        counter_file::encode_at(at, {p.state.seq + 1, value, std::max(token, p.state.token)});
    auto offset = static_cast<off_t>(counter_file::slot_offset(at));
    if (io_at(::pwrite, p.fd->get(), slot.data(), slot.size(), offset) != slot.size())
        throw failure(errno, "pwrite", p.name, fmt::format(", {} bytes at {}", slot.size(), offset),
                      "write counter", p.name);
}

StaleTokenError::StaleTokenError(std::string_view key, std::uint64_t token, std::uint64_t highest)
    : std::runtime_error(fmt::format("a write to '{}' with fencing token {} was refused: token {} "
                                     "already wrote it, so this holder's lock had been taken over",
                                     key, token, highest)),
      key_(key), token_(token), highest_(highest)
{
}

const FenceLocks& CounterStore::fence_locks(std::string_view key) const
{
    if (const FenceLocks* locks = fence_locks_.load(std::memory_order_acquire)) return *locks;
    std::lock_guard lock(fence_init_mutex_);
    if (!fence_owner_) {
        try {
            fence_owner_ = std::make_unique<const FenceLocks>(dir_fd_.get());
        } catch (const std::system_error& e) {
            throw fence_failure(e, key);
        }
        fence_locks_.store(fence_owner_.get(), std::memory_order_release);
    }
    return *fence_owner_;
}

void CounterStore::fenced_write(std::string_view key, std::uint64_t token,
                                std::uint64_t value) const
{
    Pending p{std::string(key), open_file(std::string(key)), {}};
    finish_fenced(p, token, value);
}

void CounterStore::finish_fenced(Pending& p, std::uint64_t token, std::uint64_t value,
                                 std::optional<std::uint64_t> read_at) const
{
    const std::string_view key = p.name;
    if (!p.fd) {
        (void)create_file(p.name, 0); // value 0 is what a missing file reads as; a race is fine
        p.fd = open_file(p.name);
        if (!p.fd) throw failure(ENOENT, "open", p.name, ", O_RDWR", "open counter", p.name);
        read_at.reset(); // p.state is not the new file's
    }
    const FenceLocks& locks = fence_locks(key);
    std::optional<FenceLocks::Guard> locked;
    try {
        locked.emplace(locks, key);
    } catch (const std::system_error& e) {
        throw fence_failure(e, key);
    }
    if (!read_at || locked->took_over() || locked->generation() != *read_at)
        p.state = load(p.fd->get(), p.name);
    if (token < p.state.token) throw StaleTokenError(key, token, p.state.token);
    finish_update(p, value, token);
}

std::uint64_t CounterStore::highest_token(std::string_view key) const
{
    std::string name(key);
    auto fd = open_file(name);
    return fd ? load(fd->get(), name).token : 0;
}

StoreError CounterStore::fence_failure(const std::system_error& e, std::string_view key) const
{
    return StoreError(e.code().value(), fmt::format("{}: {}", dir_.string(), e.what()),
                      fmt::format("could not lock counter '{}': {}", key,
                                  errno_reason(e.code().value())));
}

StoreError CounterStore::failure(int err, std::string_view call, std::string_view file,
                                 std::string_view args, std::string_view doing,
                                 std::string_view key) const
{
    return StoreError(
        err,
        fmt::format("{}({}/{}{}) failed: {}", call, dir_.string(), file, args, std::strerror(err)),
        fmt::format("could not {} '{}': {}", doing, key, errno_reason(err)));
}

std::string CounterStore::temp_name(std::string_view key) const
{
    return fmt::format(".{}.{}.{}.tmp", key, ::getpid(), ::gettid());
}

// The key's first write: a whole file, written aside and put in place only if the key still has
// none (RENAME_NOREPLACE; link() where the file system lacks it). False if another writer's won.
bool CounterStore::create_file(const std::string& name, std::uint64_t value) const
{
    std::string tmp = temp_name(name);
    UniqueFd fd(::openat(dir_fd_.get(), tmp.c_str(),
                         O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) throw failure(errno, "open", tmp, ", O_CREAT", "create counter", name);
    auto text = counter_file::encode_file(value);
    const std::size_t wrote = io_at(::pwrite, fd.get(), text.data(), text.size(), 0);
    const bool whole = wrote == text.size();
    int err = wrote == SIZE_MAX ? errno : ENOSPC; // a short write: the file system filled up
    fd.reset();
    int rc = -1;
    if (whole) {
        rc = ::renameat2(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), name.c_str(), RENAME_NOREPLACE);
        if (rc != 0 && errno == EINVAL)
            rc = ::linkat(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), name.c_str(), 0);
        err = errno;
    }
    ::unlinkat(dir_fd_.get(), tmp.c_str(), 0); // a leftover is removed by remove_temp_files()
    if (rc == 0 || (whole && err == EEXIST)) return rc == 0;
    if (!whole)
        throw failure(err, "pwrite", tmp, fmt::format(", {} bytes", text.size()), "create counter",
                      name);
    throw failure(err, "renameat2", tmp, fmt::format(", {}, RENAME_NOREPLACE", name),
                  "create counter", name);
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
