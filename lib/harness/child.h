#pragma once
// Child: a forked child process that dies with its test (or its demo), never returning into the
// caller's code. For tests and tools only: the server's own workers are the arbiter's business.

#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

namespace forklock::harness {

// forked_pids: every child this process forked through Child, alive or reaped (what a child made,
// semaphore names for one, is the test's too). Not thread-safe: fork from one thread.
const std::set<pid_t>& forked_pids();
void remember_forked(pid_t pid);

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
        if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork() failed");
        if (pid_ == 0) run(f, parent);
        running_ = true;
        remember_forked(pid_);
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
        if (!running_) return -1;
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
        if (!running_) return -1;
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
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

} // namespace forklock::harness
