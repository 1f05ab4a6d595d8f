#pragma once
// Key file locks for flock mode: flock(2) on DIR/KEY.lock, a file each acquisition opens itself.
//
// FAILURE MODE FIRST: flock excludes open file descriptions, not processes. An fd inherited from a
// master is one description shared by every worker, so all of them "hold" it at once, and while
// any of them keeps it open the lock outlives its holder. So every acquisition here opens the file
// anew (O_CLOEXEC) and the lock is let go by closing it: one description per holder, across
// processes and threads alike. Holder death: the kernel drops the lock when the dead process's
// files close. A held UniqueFd must not cross fork(): the child's copy would keep the lock.
//
// Removing lock files: unlinking a lock file that others have open would let two processes lock
// two different inodes, unless both sides follow one protocol: remove_lock_file_if_free() unlinks
// only while holding the lock, and a locker that got the lock checks lock_file_is_linked(); if its
// inode was unlinked meanwhile it closes it and starts again on the current file.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "os/unique_fd.h"

namespace forklock {

// lock_file_name: KEY.lock, with bytes outside [A-Za-z0-9_-] (and a leading '.') %-escaped, so
// any key maps to one file inside DIR and never to a path outside it.
std::string lock_file_name(std::string_view key);

// open_lock_file: a fresh O_CLOEXEC descriptor of `file`, created 0600 if missing.
UniqueFd open_lock_file(const std::filesystem::path& file);
// try_lock_file: flock(LOCK_EX|LOCK_NB); false if another description holds it.
[[nodiscard]] bool try_lock_file(const UniqueFd& fd, const std::filesystem::path& file);
// lock_file_until: blocks until locked (true) or the CLOCK_MONOTONIC deadline passes (false).
// flock has no timeout, so with a deadline it polls with a backoff from 50 us to 5 ms.
[[nodiscard]] bool lock_file_until(const UniqueFd& fd, const std::filesystem::path& file,
                                   std::optional<std::int64_t> deadline_ns);

// lock_file_is_linked: after locking, whether `fd` is still the file at its path (st_nlink > 0).
[[nodiscard]] bool lock_file_is_linked(const UniqueFd& fd, const std::filesystem::path& file);

// lock_key_file: locks `file` under that protocol (a file unlinked while we waited is closed and
// the current one locked instead). `fd`: an open descriptor of `file` to start with, or an empty
// one to open. Returns the descriptor: locked if `locked` came back true, else still open (to wait
// on later; a deadline already past means one try, no wait). If it throws, nothing is left open.
struct KeyFile {
    UniqueFd fd;
    bool locked = false;
};
[[nodiscard]] KeyFile lock_key_file(const std::filesystem::path& file,
                                    std::optional<std::int64_t> deadline_ns, UniqueFd fd = {});
// Fencing tokens (lock_table.h): a key's last token is kept in its lock file (8 bytes at offset
// 0, native order; an empty file is 0), read and written by the holder under the file lock, so
// every process and table that locks the file continues one sequence. A file is removed only
// after its token raised the directory's floor, DIR/.fence (no key file ends so: all end in
// .lock), under an exclusive flock of that file; a key file that starts empty starts above it.
// read_token, write_token: of a locked key file (write_token: false if the write failed; logged).
std::uint64_t read_token(const UniqueFd& fd) noexcept;
bool write_token(const UniqueFd& fd, std::uint64_t token) noexcept;
// token_floor: DIR/.fence's value (0 if missing or unreadable), read under a shared flock.
std::uint64_t token_floor(const std::filesystem::path& dir) noexcept;
// raise_token_floor: DIR/.fence = max(itself, token); false if that failed (logged).
bool raise_token_floor(const std::filesystem::path& dir, std::uint64_t token) noexcept;

// remove_lock_file_if_free: unlinks `file` if nobody holds it (never waits), once its token is in
// the floor of its directory (kept, if that fails). Errors are logged.
void remove_lock_file_if_free(const std::filesystem::path& file) noexcept;

// unlock_and_close: lets the lock go by closing (the description dies with its last fd); a failed
// close() is logged.
void unlock_and_close(UniqueFd fd) noexcept;

} // namespace forklock
