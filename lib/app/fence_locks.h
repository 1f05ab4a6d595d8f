#pragma once
// FenceLocks: the counter store's own lock of a key for its fenced step (check the token, write),
// one process-shared robust pthread mutex per stripe of keys, in the file DATA_DIR/.fence-locks
// mapped MAP_SHARED by every process that makes a fenced write in that directory (two servers on
// one directory included): uncontended, taking and releasing one is a compare-and-swap in user
// space, no system call. A key's stripe is a fixed hash of its name, the same in every process.
//
// Shared across threads and processes. The file is laid out once under flock(LOCK_EX) on it, and
// laid out again when it was made in an earlier boot (its boot id differs): a holder that died
// with the machine left a mutex nobody would ever wake. It is never removed: it is the directory's
// lock, and a process of this boot may have it mapped. Not for a data directory on a network file
// system shared by several hosts (their mappings are not one memory).
//
// If a holder dies, the next locker of its stripe takes the mutex over (EOWNERDEAD), marks it
// consistent and goes on: the store's step under it is one pwrite() of a slot with a sequence
// number and a check (counter_file.h), so a killed holder left the file consistent.
//
// Each stripe also counts the times it was held (its generation, advanced by every Guard as it
// releases the stripe), so that a writer can tell, once it holds the stripe, whether any key of it
// was written since it read its file: a writer that reads generation() before reading its file,
// then finds it unchanged under the Guard (and the Guard did not take over a dead holder), knows
// nobody held the stripe meanwhile, so its read is still the file's state. That holds for every
// writer that writes the stripe's files only under a Guard (CounterStore's fenced writes do).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include <pthread.h>

namespace forklock {

class FenceLocks final {
public:
    static constexpr std::size_t kStripes = 64;
    static constexpr const char* kFileName = ".fence-locks";

    // Maps (making it if missing) `dir_fd`'s .fence-locks. Throws std::system_error (ENOSPC if
    // the disk is full: its space is reserved with posix_fallocate, never faulted in later).
    explicit FenceLocks(int dir_fd);
    ~FenceLocks();
    FenceLocks(const FenceLocks&) = delete;
    FenceLocks& operator=(const FenceLocks&) = delete;

    // Guard: holds the stripe of `key` for its lifetime. Throws std::system_error if the mutex
    // cannot be taken (ENOTRECOVERABLE: a holder died and its successor did not repair it).
    class Guard {
    public:
        Guard(const FenceLocks& locks, std::string_view key);
        ~Guard();
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;

        // Whether the stripe's previous holder died holding it: it never advanced the generation.
        bool took_over() const noexcept { return took_over_; }
        // The stripe's generation now (the Guard holds it: nobody else can advance it).
        std::uint64_t generation() const noexcept;

    private:
        pthread_mutex_t* m_;
        std::atomic<std::uint64_t>* generation_;
        bool took_over_ = false;
    };

    // The generation of `key`'s stripe, read before reading the key's file (see above).
    std::uint64_t generation(std::string_view key) const noexcept;

    // The stripe of `key`: FNV-1a of its bytes, so that every process agrees.
    static std::size_t stripe_of(std::string_view key) noexcept;

private:
    pthread_mutex_t* mutex(std::size_t stripe) const noexcept;
    std::atomic<std::uint64_t>* generation_of(std::size_t stripe) const noexcept;
    void* map_ = nullptr;
};

} // namespace forklock
