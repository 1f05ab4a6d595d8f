#include "harness/pg_cluster.h"

#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "harness/spawn.h"
#include "os/os_error.h"

namespace forklock::harness {
namespace {

constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";
constexpr const char* kUser = "forklock";
constexpr int kPort = 5432; // names the socket file only: the directory is private
constexpr auto kStopTimeout = std::chrono::seconds(10);

RunAs run_as()
{
    if (::geteuid() != 0) return {};
    const passwd* pw = ::getpwnam("nobody");
    if (pw == nullptr) throw std::runtime_error("PgCluster: running as root needs a user `nobody`");
    return {true, pw->pw_uid, pw->pw_gid};
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
    stop_child(postmaster_, SIGINT, kStopTimeout); // fast shutdown: ends the sessions
    postmaster_ = 0;
}

std::string PgCluster::log_tail(const std::string& file) const
{
    return harness::log_tail(dir_.path() / file);
}

} // namespace forklock::harness
