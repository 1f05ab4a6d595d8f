#include "upgrade.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "os/os_error.h"

namespace forklock {
namespace {

constexpr int kListenFd = 3; // SD_LISTEN_FDS_START
constexpr int kExecFailed = 127;

// In the child, between fork() and exec(): the socket at fd 3 and the pipe above it, both
// inherited by the exec (no FD_CLOEXEC), the signal mask and dispositions the master changed
// back to the defaults.
void prepare_child(int listen_fd, int ready_fd, const std::string& notify_socket)
{
    const int ready = ::fcntl(ready_fd, F_DUPFD, kListenFd + 1); // not at 3, inherited
    if (listen_fd == kListenFd)
        ::fcntl(listen_fd, F_SETFD, 0);
    else
        ::dup2(listen_fd, kListenFd);
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "1", 1);
    ::unsetenv("LISTEN_FDNAMES");
    ::setenv(kUpgradeFdVariable, std::to_string(ready).c_str(), 1);
    if (!notify_socket.empty()) ::setenv("NOTIFY_SOCKET", notify_socket.c_str(), 1);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

} // namespace

std::optional<UpgradeHandoff> take_upgrade_handoff()
{
    const char* text = std::getenv(kUpgradeFdVariable);
    if (text == nullptr) return std::nullopt;
    int fd = -1;
    const char* end = text + std::strlen(text);
    const auto [at, ec] = std::from_chars(text, end, fd);
    ::unsetenv(kUpgradeFdVariable);
    if (ec != std::errc() || at != end || fd <= kListenFd || ::fcntl(fd, F_GETFD) < 0)
        return std::nullopt;          // not ours to write to: no handoff
    ::fcntl(fd, F_SETFD, FD_CLOEXEC); // the workers and anything they exec do not inherit it
    return UpgradeHandoff{UniqueFd(fd), ::getppid()};
}

NewMaster start_new_master(const std::filesystem::path& binary,
                           const std::vector<std::string>& args, int listen_fd,
                           const std::string& notify_socket)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw os_error(errno, "pipe2()");
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    std::vector<std::string> strings{binary.string()};
    strings.insert(strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw os_error(errno, "fork()");
    if (pid == 0) {
        prepare_child(listen_fd, write_end.get(), notify_socket);
        ::execvp(argv[0], argv.data()); // a name without '/' is looked up on PATH
        std::fprintf(stderr, "forklock: error: upgrade: execvp(%s) failed: %s\n", argv[0],
                     std::strerror(errno));
        ::_exit(kExecFailed);
    }
    return NewMaster{pid, std::move(read_end)};
}

std::filesystem::path own_binary(const char* argv0)
{
    std::error_code error;
    const std::string name = argv0 != nullptr ? argv0 : "";
    if (name.find('/') != std::string::npos) {
        auto path = std::filesystem::absolute(name, error);
        if (!error) return path;
    } else if (!name.empty()) {
        return name;
    }
    auto path = std::filesystem::read_symlink("/proc/self/exe", error);
    return error ? std::filesystem::path() : path;
}

} // namespace forklock
