#pragma once
// Helpers for tests that fork: run a child function, wait for conditions with deadlines (never
// fixed sleeps), reap with a deadline, and count what a test left in /dev/shm.

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "harness/temp_dir.h"
#include "harness/wait.h"

namespace forklock::test {

// fork_child: runs f() in a child that exits with f's return value (or 99 if it threw). The child
// never returns into Catch2.
inline pid_t fork_child(const std::function<int()>& f)
{
    const pid_t pid = ::fork();
    if (pid == 0) {
        int rc = 99;
        try {
            rc = f();
        } catch (...) {
        }
        ::_exit(rc);
    }
    return pid;
}

using harness::wait_until;

// reap: waits for `pid` with a deadline; kills it if it overstays. Returns the exit code, or
// 128 + signal, or -1 if it had to be killed.
inline int reap(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(20))
{
    int status = 0;
    const bool exited = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
    if (!exited) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline void kill_and_reap(pid_t pid)
{
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
}

// The lock tests' spelling of harness::TempDir (`TempDir dir; dir.path / "k.lock"`).
struct TempDir {
    harness::TempDir dir;
    const std::filesystem::path& path = dir.path();
    TempDir() = default;
    TempDir(TempDir&&) = delete;
};

// Semaphore names this project made (sem.forklock.*) still in /dev/shm.
inline int forklock_shm_entries()
{
    int n = 0;
    if (DIR* d = ::opendir("/dev/shm")) {
        while (const dirent* e = ::readdir(d))
            n += std::string(e->d_name).rfind("sem.forklock.", 0) == 0;
        ::closedir(d);
    }
    return n;
}

} // namespace forklock::test
