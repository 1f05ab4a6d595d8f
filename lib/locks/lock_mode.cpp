#include <forklock/lock_mode.h>

#include <array>

namespace forklock {

namespace {

// One row per mode, in the order of LockMode.
constexpr std::array kModes{
    ModeFacts{.mode = LockMode::none,
              .name = "none",
              .why = "no lock: concurrent read-modify-writes overwrite each other",
              .holder_death = "this mode does not exclude processes",
              .excludes = false,
              .private_memory = true},
    ModeFacts{.mode = LockMode::thread,
              .name = "thread",
              .why = "std::mutex lives in private memory: fork gives each worker its own copy, so "
                     "it only excludes threads of one worker",
              .holder_death = "this mode does not exclude processes",
              .excludes = true,
              .private_memory = true},
    ModeFacts{.mode = LockMode::semaphore,
              .name = "semaphore",
              .why = "named semaphores and the owner word live in memory every worker maps, but "
                     "only if the master made them before fork or every worker opens them by one "
                     "--lock-name",
              .holder_death = "the master reaps the dead pid and releases the keys it held "
                              "(nginx style)",
              .excludes = true,
              .can_be_named = true,
              .leases = true},
    ModeFacts{.mode = LockMode::mutex,
              .name = "mutex",
              .why = "robust process-shared mutexes live in MAP_SHARED memory, but only if the "
                     "master made it before fork or every worker opens it by one --lock-name",
              .holder_death = "robust mutex: the next locker gets EOWNERDEAD and takes over",
              .excludes = true,
              .can_be_named = true,
              .takes_over_dead_holder = true},
    ModeFacts{.mode = LockMode::flock,
              .name = "flock",
              .why = "the kernel owns file locks: every worker opens the same lock file, so they "
                     "exclude each other with or without preload",
              .holder_death = "the kernel drops a dead process's file locks",
              .excludes = true,
              .shared_without_preload = true,
              .needs_lock_dir = true,
              .takes_over_dead_holder = true},
    ModeFacts{.mode = LockMode::postgres,
              .name = "postgres",
              .why = "PostgreSQL holds advisory locks for every connection to one database: "
                     "workers, and servers on other machines, exclude each other with or without "
                     "preload",
              .holder_death = "the dead worker's socket closes, so PostgreSQL ends its session and "
                              "releases the session's advisory locks",
              .excludes = true,
              .shared_without_preload = true,
              .needs_url = true,
              .uses_lock_server = true,
              .takes_over_dead_holder = true},
    ModeFacts{.mode = LockMode::redis,
              .name = "redis",
              .why = "Redis holds a lease (SET NX PX) for every client of one database: workers, "
                     "and servers on other machines, exclude each other with or without "
                     "preload, until a holder outlives its lease",
              .holder_death = "nothing tells Redis: the dead worker's key frees itself when its "
                              "lease (PX) expires",
              .excludes = true,
              .shared_without_preload = true,
              .needs_url = true,
              .uses_lock_server = true,
              .leases = true},
};

// Why a mode without leases cannot take a live holder's key: the one place that says it.
constexpr std::string_view kNoLease[] = {
    "none excludes nobody: there is no holder to take a key from",
    "thread: a std::mutex held by a live thread cannot be taken from it",
    "",
    "mutex: a robust mutex held by a live thread cannot be taken from it (only a dead owner's)",
    "flock: the kernel keeps a live holder's file lock; no other process can take it",
    "postgres: another session's advisory lock cannot be taken, only that session ended",
};

constexpr bool in_enum_order()
{
    for (std::size_t i = 0; i < kModes.size(); ++i)
        if (static_cast<std::size_t>(kModes[i].mode) != i) return false;
    return true;
}
static_assert(in_enum_order(), "kModes[i].mode must be LockMode(i)");

} // namespace

std::string_view lease_problem(LockMode mode) noexcept
{
    const auto i = static_cast<std::size_t>(mode);
    if (facts(mode).leases) return "";
    return i < std::size(kNoLease) ? kNoLease[i] : "this mode cannot take a held key over";
}

std::span<const ModeFacts> lock_modes() noexcept { return kModes; }

const ModeFacts& facts(LockMode mode) noexcept
{
    const auto i = static_cast<std::size_t>(mode);
    return kModes[i < kModes.size() ? i : 0];
}

std::optional<LockMode> parse_lock_mode(std::string_view name)
{
    for (const ModeFacts& m : kModes)
        if (m.name == name) return m.mode;
    if (name == "process") return kProcessMode;
    return std::nullopt;
}

std::string_view to_string(LockMode mode)
{
    const auto i = static_cast<std::size_t>(mode);
    return i < kModes.size() ? kModes[i].name : "?";
}

bool serializes_increments(LockMode mode, bool preload, int workers, int threads, bool named)
{
    const ModeFacts& m = facts(mode);
    const bool one_process = workers == 1;
    if (!m.excludes) return one_process && threads == 1;
    if (one_process || m.shared_without_preload) return true;
    if (m.private_memory) return false;
    return preload || named;
}

std::string_view explain(LockMode mode)
{
    const auto i = static_cast<std::size_t>(mode);
    return i < kModes.size() ? kModes[i].why : "?";
}

} // namespace forklock
