#pragma once
// Helpers for tests that fork: run a child function, wait for conditions with deadlines (never
// fixed sleeps), reap with a deadline, and count what a test left in /dev/shm.

#include <dirent.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

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

// forked_pids: every child this process forked through Child, alive or reaped (for the /dev/shm
// count: what a child made is the test's too).
inline std::set<pid_t>& forked_pids()
{
    static std::set<pid_t> pids;
    return pids;
}

// Child: runs f() in a forked child that exits with f's return value (99 if it threw) and never
// returns into Catch2. The child dies with its test: the destructor SIGKILLs and reaps it if it is
// still running (a failed REQUIRE unwinds through it), and PR_SET_PDEATHSIG kills it if the test
// process dies. PDEATHSIG follows the forking *thread*: fork from the main thread (or one that
// outlives the child). pid() still names the child once reaped (for release_owned_by). Move-only;
// not thread-safe.
class Child {
public:
    explicit Child(const std::function<int()>& f)
    {
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0)
            throw std::system_error(errno, std::generic_category(), "fork() failed");
        if (pid_ == 0)
            run(f, parent);
        running_ = true;
        forked_pids().insert(pid_);
    }
    Child(Child&& other) noexcept
        : pid_(std::exchange(other.pid_, 0)), running_(std::exchange(other.running_, false))
    {
    }
    Child& operator=(Child&&) = delete;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() { kill(); }

    pid_t pid() const { return pid_; }

    // wait: the exit code, or 128 + signal; -1 if it was still running at the timeout (it is then
    // killed). Once reaped, wait() and kill() return -1.
    int wait(std::chrono::milliseconds timeout = std::chrono::seconds(20))
    {
        if (!running_)
            return -1;
        int status = 0;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (::waitpid(pid_, &status, WNOHANG) != pid_) {
            if (std::chrono::steady_clock::now() >= deadline) {
                kill();
                return -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        running_ = false;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

    // kill: SIGKILL and reap; returns what wait() would (128 + SIGKILL unless it had exited).
    int kill() noexcept
    {
        if (!running_)
            return -1;
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        running_ = false;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    [[noreturn]] static void run(const std::function<int()>& f, pid_t parent) noexcept
    {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) // the parent died before the prctl: no signal will come
            ::_exit(98);
        int rc = 99;
        try {
            rc = f();
        } catch (...) {
        }
        ::_exit(rc);
    }

    pid_t pid_ = 0;
    bool running_ = false; // forked and not yet reaped
};

// The lock tests' spelling of harness::TempDir (`TempDir dir; dir.path / "k.lock"`).
struct TempDir {
    harness::TempDir dir;
    const std::filesystem::path& path = dir.path();
    TempDir() = default;
    TempDir(TempDir&&) = delete;
};

// Semaphore names this project made (sem.forklock.*) still in /dev/shm.
// Only names made by this process or by a child it forked (sem.forklock.PID.*, PID the creator's)
// count: other test binaries and servers on the machine make and unlink their own meanwhile.
inline int forklock_shm_entries()
{
    int n = 0;
    if (DIR* d = ::opendir("/dev/shm")) {
        while (const dirent* e = ::readdir(d)) {
            int pid = 0;
            if (std::sscanf(e->d_name, "sem.forklock.%d.", &pid) == 1 &&
                (pid == ::getpid() || forked_pids().count(pid) != 0))
                ++n;
        }
        ::closedir(d);
    }
    return n;
}

} // namespace forklock::test
