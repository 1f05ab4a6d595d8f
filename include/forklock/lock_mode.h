#pragma once
// The seven lock modes one binary can run, and what each of them promises.

#include <optional>
#include <span>
#include <string_view>

#include <forklock/export.h>

namespace forklock {

enum class LockMode {
    none,      // no exclusion at all: the baseline that loses updates
    thread,    // std::mutex per key in private memory: threads of one process only
    semaphore, // named POSIX semaphores + an owner word in shared memory (nginx shmtx style)
    mutex,     // robust PTHREAD_PROCESS_SHARED mutexes in shared memory
    flock,     // flock(2) on a per-key lock file each process opens itself
    postgres,  // PostgreSQL advisory locks, one connection per thread: shared across machines
    redis,     // Redis SET NX PX leases, one connection per thread: a key expires with its lease
};

// "none", "thread", "semaphore", "mutex", "flock", "postgres", "redis"; "process" is accepted as a name for
// the default process-shared mode, kProcessMode (see below). nullopt for anything else.
// ModeFacts: what a mode is, in one row of one table (lock_mode.cpp) that every list, help text,
// check and prediction reads, so a new mode is one row there and not a switch in each reader.
struct ModeFacts {
    LockMode mode;
    std::string_view name;
    std::string_view why;          // one sentence: what the mode does across fork() (explain())
    std::string_view holder_death; // one line: what happens to a key whose holder died
    bool excludes = false;         // false: holders are not ordered at all (none)
    bool private_memory = false;   // the table is each process's own copy (none, thread)
    bool shared_without_preload = false; // processes meet in the kernel or a server, preload or not
    bool can_be_named = false;     // LockTableOptions::name finds one table (semaphore, mutex)
    bool needs_url = false;        // LockTableOptions::url is required (postgres, redis)
    bool uses_lock_server = false; // the locks live in a server that can be down (postgres, redis)
    bool needs_lock_dir = false;   // LockTableOptions::lock_dir holds its lock files (flock)
    bool takes_over_dead_holder = false; // the next locker recovers a dead holder's key by itself
    bool leases = false; // a held key can outlive its lease (LockTableOptions::lease_ms) and be taken
};

// lock_modes: every mode, in the order of LockMode. facts: the row of `mode`.
FORKLOCK_API std::span<const ModeFacts> lock_modes() noexcept;
FORKLOCK_API const ModeFacts& facts(LockMode mode) noexcept;

FORKLOCK_API std::optional<LockMode> parse_lock_mode(std::string_view name);
FORKLOCK_API std::string_view to_string(LockMode mode);

// `process` means `mutex`: it is the one process-shared mode that recovers from a holder killed
// mid-section by itself (the kernel hands EOWNERDEAD to the next locker; no supervisor needed),
// and it is the fastest of the three shared modes under contention (see bench/).
inline constexpr LockMode kProcessMode = LockMode::mutex;

// serializes_increments: true when no two read-modify-writes of one key can overlap in a
// pre-fork server of `workers` processes x `threads` threads in this mode. The one rule the
// server's warnings and the demo's predictions share: one process and one thread is always safe;
// flock and postgres are shared with or without preload; semaphore and mutex when the master made
// them before fork (inherited) or every worker opens them by one name (`named`, --lock-name):
// "inherited or named"; thread never across processes; none never with concurrency.
FORKLOCK_API bool serializes_increments(LockMode mode, bool preload, int workers, int threads,
                                        bool named = false);

// issues_tokens: grants carry fencing tokens (KeyGuard::token()): every mode whose holders exclude
// each other across processes. none and thread give 0 (a private table's numbers would repeat).
inline bool issues_tokens(const ModeFacts& f) noexcept { return f.excludes && !f.private_memory; }

// lease_problem: why a mode cannot take a held key over after a lease, or "" if it can (leases).
FORKLOCK_API std::string_view lease_problem(LockMode mode) noexcept;

// One sentence, for logs, the demo and /locks: what this mode does across fork().
FORKLOCK_API std::string_view explain(LockMode mode);

} // namespace forklock
