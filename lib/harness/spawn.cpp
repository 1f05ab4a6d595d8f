#include "harness/spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#include "os/os_error.h"

namespace forklock::harness {

pid_t spawn(const std::vector<std::string>& argv, const std::string& log, const std::string& dir,
            const RunAs& as, int deathsig)
{
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw os_error(errno, "fork()");
    if (pid > 0) return pid;
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || in < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0)
        ::_exit(126);
    if (as.drop && (::setgroups(0, nullptr) != 0 || ::setgid(as.gid) != 0 || ::setuid(as.uid) != 0))
        ::_exit(126);
    // After setuid: a change of credentials clears the parent-death signal.
    if (::prctl(PR_SET_PDEATHSIG, deathsig) != 0 || ::getppid() != parent) ::_exit(126);
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    ::execv(args[0], args.data());
    ::_exit(127);
}

int wait_exit(pid_t pid, std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 && errno != EINTR) return status; // not our child any more: nothing to wait for
        if (std::chrono::steady_clock::now() >= deadline) return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

void stop_child(pid_t pid, int sig, std::chrono::milliseconds timeout) noexcept
{
    if (pid == 0) return;
    ::kill(pid, sig);
    if (wait_exit(pid, timeout) == -1) {
        ::kill(pid, SIGKILL);
        wait_exit(pid, timeout);
    }
}

std::string log_tail(const std::filesystem::path& file)
{
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    std::string all = text.str();
    constexpr std::size_t kTail = 2000;
    if (all.size() > kTail) all = "..." + all.substr(all.size() - kTail);
    return all.empty() ? "(no output in " + file.filename().string() + ")" : all;
}

} // namespace forklock::harness
