#pragma once
// CounterStore: one decimal counter per key, one file per key in a data directory.
//
// Crash contract: a process SIGKILLed at any instant never leaves a torn or empty counter, and
// every write() that returned is in the file. write() puts "VALUE\n" in a private temporary
// file `.KEY.PID.TID.tmp` and atomically swaps it with `KEY` (renameat2 RENAME_EXCHANGE, then
// unlinks the old file; plain rename() for a new key): a reader sees the old file or the new one,
// never a mix, and a killed writer leaves at most a stale temporary file behind. This survives
// process death, not power loss: nothing is fsync()ed (that would cost milliseconds per increment
// on a disk).
//
// Keys are validated (valid_key) before any path is built: 1..128 characters of A-Za-z0-9._-,
// never starting with '.', so a key can't name a temporary file, "..", or anything outside the
// directory; files are opened relative to the directory's fd with O_NOFOLLOW.
//
// Thread safety: const members may be called concurrently from any thread or process; they do
// not lock: the caller serialises read-modify-write with a lock per key.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "os/unique_fd.h"

namespace forklock {

inline constexpr std::size_t kMaxCounterKeyLength = 128;

// Why `key` is not a valid counter key, or nullopt if it is.
std::optional<std::string> key_error(std::string_view key);
inline bool valid_key(std::string_view key) { return !key_error(key).has_value(); }

class CounterStore final {
public:
    // Opens an existing directory. Throws std::system_error.
    explicit CounterStore(const std::filesystem::path& dir);

    // Creates `dir` (and parents) if missing. Throws std::system_error / filesystem_error.
    static void create_directory(const std::filesystem::path& dir);

    // The stored value, 0 for a key never written. Throws std::runtime_error on a corrupt file.
    std::uint64_t read(std::string_view key) const;
    // Replaces the value atomically (see the crash contract above).
    void write(std::string_view key, std::uint64_t value) const;

    // Boot check: creates and removes a temporary file. Throws std::system_error.
    void check_writable() const;
    // Removes temporary files left by killed writers: all of them, or only those of `pid`.
    // Returns how many were removed. Never throws.
    std::size_t remove_temp_files(std::optional<pid_t> pid = std::nullopt) const noexcept;

    const std::filesystem::path& dir() const noexcept { return dir_; }

private:
    std::string temp_name(std::string_view key) const;
    void replace(const std::string& tmp, const std::string& name) const;
    std::filesystem::path dir_;
    UniqueFd dir_fd_;
};

// `.KEY.PID.TID.tmp` -> PID, for names write() makes; nullopt for anything else.
std::optional<pid_t> temp_file_owner(std::string_view name);

} // namespace forklock
