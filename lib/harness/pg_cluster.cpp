#include "harness/pg_cluster.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "os/os_error.h"

namespace forklock::harness {
namespace {

constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";
constexpr const char* kUser = "forklock";
constexpr int kPort = 5432; // names the socket file only: the directory is private
constexpr auto kStopTimeout = std::chrono::seconds(10);

// RunAs: who the PostgreSQL processes run as: `nobody` under root, else the caller.
struct RunAs {
    bool drop = false;
    uid_t uid = 0;
    gid_t gid = 0;
};

RunAs run_as()
{
    if (::geteuid() != 0) return {};
    const passwd* pw = ::getpwnam("nobody");
    if (pw == nullptr) throw std::runtime_error("PgCluster: running as root needs a user `nobody`");
    return {true, pw->pw_uid, pw->pw_gid};
}

// spawn: fork and exec argv[0] with stdout and stderr appended to `log`, in `dir`, as `as`,
// receiving `deathsig` when the forking thread dies. Only async-signal-safe calls after fork.
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

// wait_exit: the child's exit status once it has exited, or -1 if it still runs at `timeout`.
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

std::string bin(const char* name) { return fmt::format("{}/{}", kBinDir, name); }

} // namespace

bool PgCluster::available()
{
    return ::access(bin("initdb").c_str(), X_OK) == 0 &&
           ::access(bin("postgres").c_str(), X_OK) == 0;
}

PgCluster::PgCluster(std::chrono::milliseconds start_timeout) : dir_("forklock-pg")
{
    conninfo_ =
        fmt::format("host={} port={} user={} dbname=postgres", dir_.path().string(), kPort, kUser);
    const RunAs as = run_as();
    if (as.drop && ::chown(dir_.path().c_str(), as.uid, as.gid) != 0)
        throw os_error(errno, "chown({}, {}, {})", dir_.path().string(), as.uid, as.gid);
    initdb();
    start(start_timeout);
}

PgCluster::~PgCluster() { stop(); }

void PgCluster::initdb()
{
    const std::string dir = dir_.path().string();
    const pid_t pid = spawn({bin("initdb"), "-D", dir + "/data", "-U", kUser, "-A", "trust", "-E",
                             "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
                            dir + "/initdb.log", dir, run_as(), SIGKILL);
    const int status = wait_exit(pid, std::chrono::minutes(2));
    if (status == -1) {
        ::kill(pid, SIGKILL);
        wait_exit(pid, std::chrono::seconds(5));
    }
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("PgCluster: initdb failed: " + log_tail("initdb.log"));
}

void PgCluster::start(std::chrono::milliseconds timeout)
{
    if (postmaster_ != 0) return;
    const std::string dir = dir_.path().string();
    postmaster_ = spawn({bin("postgres"), "-D", dir + "/data", "-k", dir, "-p",
                         std::to_string(kPort), "-c", "listen_addresses=", "-c", "fsync=off", "-c",
                         "full_page_writes=off", "-c", "synchronous_commit=off", "-c",
                         "dynamic_shared_memory_type=mmap", "-c", "shared_buffers=16MB"},
                        dir + "/postgres.log", dir, run_as(), SIGQUIT);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (PQping(conninfo_.c_str()) != PQPING_OK) {
        const bool exited = wait_exit(postmaster_, std::chrono::milliseconds(0)) != -1;
        if (exited) postmaster_ = 0;
        if (exited || std::chrono::steady_clock::now() >= deadline) {
            stop();
            throw std::runtime_error(fmt::format("PgCluster: postgres {}: {}",
                                                 exited ? "exited" : "not ready in time",
                                                 log_tail("postgres.log")));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

void PgCluster::stop() noexcept
{
    if (postmaster_ == 0) return;
    ::kill(postmaster_, SIGINT); // fast shutdown: ends the sessions, waits for its children
    if (wait_exit(postmaster_, kStopTimeout) == -1) {
        ::kill(postmaster_, SIGKILL);
        wait_exit(postmaster_, kStopTimeout);
    }
    postmaster_ = 0;
}

std::string PgCluster::log_tail(const std::string& file) const
{
    std::ifstream in(dir_.path() / file);
    std::stringstream text;
    text << in.rdbuf();
    std::string all = text.str();
    constexpr std::size_t kTail = 2000;
    if (all.size() > kTail) all = "..." + all.substr(all.size() - kTail);
    return all.empty() ? "(no output in " + file + ")" : all;
}

} // namespace forklock::harness
