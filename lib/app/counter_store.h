#pragma once
// CounterStore: one counter per key, one file per key in a data directory (format in
// counter_file.h: a header line and two fixed-width slots, the value in the newer valid one).
//
// Crash contract: a process SIGKILLed at any instant never leaves a torn, empty or corrupt
// counter, and every write() that returned is in the file. write() replaces the slot not holding
// the newest value with one pwrite() of 64 bytes; the kernel copies a write within one page into
// the page cache whole or not at all when the writer is killed (generic_perform_write() checks
// fatal_signal_pending() only between pages), and even a slot torn some other way fails its
// check, so the other slot, the previous value, is read. A key's first write puts a complete
// file in place with rename(RENAME_NOREPLACE) from a private temporary `.KEY.PID.TID.tmp`, so a
// killed writer leaves at most a stale temporary file behind. A format-1 file ("VALUE\n", from
// earlier versions) is read as it is and migrated in place by its first write, which only appends
// a slot after the old bytes. This survives process death, not power loss or a kernel crash:
// nothing is fsync()ed (that would cost milliseconds per increment on a disk).
//
// The kernel side (mm/filemap.c, generic_perform_write(), which ext4, xfs, btrfs and tmpfs's
// buffered writes go through): per page it faults the source in, checks fatal_signal_pending(),
// then copies with page faults disabled, where no signal can stop it. A copy comes out short only
// if the source page vanished between the fault-in and the copy (our 64 bytes are on the stack,
// just written); write_end() may then keep the part copied, and that slot fails its check. Not
// covered: power loss and kernel crashes; file systems with their own write path (NFS, FUSE),
// where only the check stands between a torn slot and a reader; writers of one key not
// serialised by its lock (modes none and thread): the inode lock keeps each pwrite whole, but
// those writers lose updates, as those modes are there to show.
//
// Files are updated in place and never replaced, so each process keeps its files open (at most
// kMaxOpenFiles; then all are closed and reopened on use). Removing or replacing a counter file
// while a server runs is not supported: a process holding it open keeps using the old inode.
//
// Keys are validated (valid_key) before any path is built: 1..128 characters of A-Za-z0-9._-,
// never starting with '.', so a key can't name a temporary file, "..", or anything outside the
// directory; files are opened relative to the directory's fd with O_NOFOLLOW.
//
// Thread safety: const members may be called concurrently from any thread or process. Readers
// take no lock (a read racing a write sees the old value or the new one); the caller serialises
// read-modify-write, and so concurrent write()s of one key, with a lock per key; update_fenced()
// takes the store's own lock of the key besides (the server's --fencing).

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <string>
#include <string_view>
#include <unordered_map>

#include "app/counter_file.h"
#include "app/fence_locks.h"
#include "os/unique_fd.h"

namespace forklock {

inline constexpr std::size_t kMaxCounterKeyLength = 128;

// StoreError: a counter file could not be read or written. what() is for the log: the call, the
// file's absolute path and errno's text. client_message() is for an HTTP answer: what failed and
// why, naming the key, never the data directory. error() is the errno (0: the file is corrupt or
// not a regular file).
class StoreError : public std::runtime_error {
public:
    StoreError(int error, const std::string& log_message, std::string client_message)
        : std::runtime_error(log_message), error_(error), client_(std::move(client_message))
    {
    }
    int error() const noexcept { return error_; }
    const std::string& client_message() const noexcept { return client_; }

private:
    int error_;
    std::string client_;
};

// StaleTokenError: fenced_write() refused a write whose fencing token is lower than the highest
// one that wrote the key: its holder's lock had been given to another. Nothing was written.
class StaleTokenError : public std::runtime_error {
public:
    StaleTokenError(std::string_view key, std::uint64_t token, std::uint64_t highest);
    const std::string& key() const noexcept { return key_; }
    std::uint64_t token() const noexcept { return token_; }
    std::uint64_t highest() const noexcept { return highest_; }

private:
    std::string key_;
    std::uint64_t token_, highest_;
};

// Why `key` is not a valid counter key, or nullopt if it is.
std::optional<std::string> key_error(std::string_view key);
inline bool valid_key(std::string_view key) { return !key_error(key).has_value(); }

class CounterStore final {
public:
    static constexpr std::size_t kMaxOpenFiles = 256;

    // Opens an existing directory. Throws std::system_error.
    explicit CounterStore(const std::filesystem::path& dir);

    // Creates `dir` (and parents) if missing. Throws std::system_error / filesystem_error.
    static void create_directory(const std::filesystem::path& dir);

    // The stored value, 0 for a key never written. Throws StoreError on a corrupt file or an I/O
    // error.
    std::uint64_t read(std::string_view key) const;
    // Replaces the value atomically (see the crash contract above). Throws StoreError on a corrupt
    // file (it is left as it is) or an I/O error. On a full disk (ENOSPC, EDQUOT) only a key's
    // first write can fail, and then no file is left behind; later writes stay within the
    // file's first page, whose space the first write took.
    void write(std::string_view key, std::uint64_t value) const;
    // update: write(key, next(read(key))) reading the file once; returns what it wrote. For a
    // caller holding the key's lock; next() may throw (nothing is written then).
    template <typename Next>
    std::uint64_t update(std::string_view key, Next&& next) const
    {
        Pending p = begin_update(key);
        const std::uint64_t value = next(p.state.value);
        finish_update(p, value);
        return value;
    }

    // update_fenced: update() with fencing (the server's --fencing): next(read(key)), then
    // fenced_write(). The store keeps, in the key's file, the highest fencing token that wrote it
    // (counter_file.h), and fenced_write refuses with StaleTokenError a write with an older token:
    // a holder whose lock was taken over and who wakes after a newer holder wrote writes nothing.
    // The check and the write are one step, under the store's own lock of the key (a robust
    // mutex per stripe of keys, shared by every process using the directory: fence_locks.h), so
    // no pause can fall between them; next() runs before, outside it, so a paused holder never
    // holds it. What it does not refuse: a late write that lands between a newer holder's read and
    // its write (the late token is still the highest that wrote); the newer write then overwrites
    // it, so the late holder's own increment is lost, and its unlock (which finds its key taken)
    // tells its caller not to acknowledge it. No acknowledged write is lost. next() may throw
    // (nothing is written then).
    // Every fenced write holds the stripe, and each holding advances its generation
    // (fence_locks.h), read here before the file: if it has not moved when the store's lock is
    // taken, the file is as read and is not read again. So every writer of a fenced directory
    // must fence (the server's --fencing fences its resets too); a plain write() racing a fenced
    // one is not checked.
    template <typename Next>
    std::uint64_t update_fenced(std::string_view key, std::uint64_t token, Next&& next) const
    {
        const std::uint64_t generation = fence_locks(key).generation(key);
        Pending p = begin_update(key); // outside the store's lock: next() may pause
        const std::uint64_t value = next(p.state.value);
        finish_fenced(p, token, value, generation);
        return value;
    }
    // fenced_write: under the store's lock of the key, refuses `token` below the file's highest
    // (StaleTokenError), else writes `value` with it. A key's first one makes its file first, and
    // the store's first one maps DATA_DIR/.fence-locks (made if missing; it stays).
    void fenced_write(std::string_view key, std::uint64_t token, std::uint64_t value) const;
    // highest_token: the highest fencing token that wrote `key` (0: none, or no file).
    std::uint64_t highest_token(std::string_view key) const;

    // Boot check: creates and removes a temporary file. Throws std::system_error.
    void check_writable() const;
    // Removes temporary files left by killed writers: all of them, or only those of `pid`.
    // Returns how many were removed. Never throws.
    std::size_t remove_temp_files(std::optional<pid_t> pid = std::nullopt) const noexcept;

    const std::filesystem::path& dir() const noexcept { return dir_; }

private:
    using SharedFd = std::shared_ptr<const UniqueFd>;
    struct Pending { // an update between its read and its write
        std::string name;
        SharedFd fd; // nullptr: the key has no file yet
        counter_file::State state;
    };
    Pending begin_update(std::string_view key) const;
    void finish_update(Pending& p, std::uint64_t value, std::uint64_t token = 0) const;
    // fenced_write's step on a file already open in `p` (or none yet); `p.state` is read again
    // unless it was read at the stripe's generation `read_at`, and that is still the generation.
    void finish_fenced(Pending& p, std::uint64_t token, std::uint64_t value,
                       std::optional<std::uint64_t> read_at = std::nullopt) const;
    // The key's open file, nullptr if there is none. Shared: closing the cache frees no fd in use.
    SharedFd open_file(const std::string& name) const;
    counter_file::State load(int fd, const std::string& name) const;
    bool create_file(const std::string& name, std::uint64_t value) const;
    // The store's locks of keys, mapped by the first fenced_write (a store that never fences
    // leaves no .fence-locks behind). Throws StoreError.
    const FenceLocks& fence_locks(std::string_view key) const;
    std::string temp_name(std::string_view key) const;
    // The StoreError of `call` on `file` (then `args`) failing with `err`; `doing` and `key` say
    // what failed, for the client: "could not write counter 'k': ...".
    StoreError failure(int err, std::string_view call, std::string_view file, std::string_view args,
                       std::string_view doing, std::string_view key) const;
    // The StoreError of the store's lock of `key` (fence_locks.h) failing with `e`.
    StoreError fence_failure(const std::system_error& e, std::string_view key) const;
    std::filesystem::path dir_;
    UniqueFd dir_fd_;
    mutable std::mutex files_mutex_;
    mutable std::unordered_map<std::string, SharedFd> files_;
    mutable std::mutex fence_init_mutex_;
    mutable std::unique_ptr<const FenceLocks> fence_owner_;
    mutable std::atomic<const FenceLocks*> fence_locks_{nullptr};
};

// `.KEY.PID.TID.tmp` -> PID, for names write() makes; nullopt for anything else.
std::optional<pid_t> temp_file_owner(std::string_view name);

} // namespace forklock
