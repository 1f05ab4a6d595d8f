#pragma once
// The five lock modes one binary can run, and what each of them promises.

#include <optional>
#include <string_view>

namespace forklock {

enum class LockMode {
    none,      // no exclusion at all: the baseline that loses updates
    thread,    // std::mutex per key in private memory: threads of one process only
    semaphore, // named POSIX semaphores + an owner word in shared memory (nginx shmtx style)
    mutex,     // robust PTHREAD_PROCESS_SHARED mutexes in shared memory
    flock,     // flock(2) on a per-key lock file each process opens itself
};

// "none", "thread", "semaphore", "mutex", "flock"; "process" is accepted as a name for the
// default process-shared mode, kProcessMode (see below). nullopt for anything else.
std::optional<LockMode> parse_lock_mode(std::string_view name);
std::string_view to_string(LockMode mode);

// `process` means `mutex`: it is the one process-shared mode that recovers from a holder killed
// mid-section by itself (the kernel hands EOWNERDEAD to the next locker; no supervisor needed),
// and it is the fastest of the three shared modes under contention (see bench/).
inline constexpr LockMode kProcessMode = LockMode::mutex;

// True when a table of this mode excludes processes that share it: semaphore and mutex when the
// table was created before fork and inherited, flock always (the kernel's file is the meeting
// point). False for none and thread.
bool excludes_processes(LockMode mode);

// True when the mode's shared state must be created before fork to be shared at all.
bool needs_preload(LockMode mode);

// One sentence, for logs, the demo and /locks: what this mode does across fork().
std::string_view explain(LockMode mode);

} // namespace forklock
