#include <forklock/lock_mode.h>

namespace forklock {

std::optional<LockMode> parse_lock_mode(std::string_view name)
{
    if (name == "none") return LockMode::none;
    if (name == "thread") return LockMode::thread;
    if (name == "semaphore") return LockMode::semaphore;
    if (name == "mutex") return LockMode::mutex;
    if (name == "flock") return LockMode::flock;
    if (name == "postgres") return LockMode::postgres;
    if (name == "process") return kProcessMode;
    return std::nullopt;
}

std::string_view to_string(LockMode mode)
{
    switch (mode) {
    case LockMode::none: return "none";
    case LockMode::thread: return "thread";
    case LockMode::semaphore: return "semaphore";
    case LockMode::mutex: return "mutex";
    case LockMode::flock: return "flock";
    case LockMode::postgres: return "postgres";
    }
    return "?";
}

bool serializes_increments(LockMode mode, bool preload, int workers, int threads, bool named)
{
    const bool one_process = workers == 1;
    if (mode == LockMode::none) return one_process && threads == 1;
    if (one_process || mode == LockMode::flock || mode == LockMode::postgres) return true;
    if (mode == LockMode::thread) return false;
    return preload || named;
}

std::string_view explain(LockMode mode)
{
    switch (mode) {
    case LockMode::none: return "no lock: concurrent read-modify-writes overwrite each other";
    case LockMode::thread:
        return "std::mutex lives in private memory: fork gives each worker its own copy, so it "
               "only excludes threads of one worker";
    case LockMode::semaphore:
        return "named semaphores and the owner word live in memory every worker maps, but only if "
               "the master made them before fork or every worker opens them by one --lock-name";
    case LockMode::mutex:
        return "robust process-shared mutexes live in MAP_SHARED memory, but only if the master "
               "made it before fork or every worker opens it by one --lock-name";
    case LockMode::flock:
        return "the kernel owns file locks: every worker opens the same lock file, so they "
               "exclude each other with or without preload";
    case LockMode::postgres:
        return "PostgreSQL holds advisory locks for every connection to one database: workers, "
               "and servers on other machines, exclude each other with or without preload";
    }
    return "?";
}

} // namespace forklock
