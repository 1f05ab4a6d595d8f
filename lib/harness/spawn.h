#pragma once
// Helpers for the harness's throwaway servers (PgCluster, RedisServer): start a server binary as
// a child that dies with the thread that started it, wait for it, stop it, read its log.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace forklock::harness {

// RunAs: who a spawned server runs as (drop: switch to uid/gid before exec).
struct RunAs {
    bool drop = false;
    uid_t uid = 0;
    gid_t gid = 0;
};

// spawn: fork and exec argv[0] with stdout and stderr appended to `log`, in `dir`, as `as`,
// receiving `deathsig` when the forking thread dies. Only async-signal-safe calls after fork.
// Throws std::system_error when fork fails; the child exits 126 when its setup fails, 127 when
// the exec does.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log, const std::string& dir,
            const RunAs& as, int deathsig);

// wait_exit: the child's exit status once it has exited, or -1 if it still runs at `timeout`.
int wait_exit(pid_t pid, std::chrono::milliseconds timeout);

// stop_child: sends `sig`, waits up to `timeout`, then SIGKILLs and reaps. Nothing for pid 0.
void stop_child(pid_t pid, int sig, std::chrono::milliseconds timeout) noexcept;

// log_tail: the last 2,000 bytes of `file`, or a line saying it is empty.
std::string log_tail(const std::filesystem::path& file);

} // namespace forklock::harness
