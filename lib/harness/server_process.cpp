#include "harness/server_process.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "harness/wait.h"
#include "os/os_error.h"
#include "os/unique_fd.h"

namespace forklock::harness {
namespace {

using namespace std::chrono_literals;

constexpr auto kPollInterval = 10ms;
constexpr auto kGroupGrace = 2s; // for workers to follow their master before SIGKILL
constexpr auto kKillWait = 3s;

std::string read_file(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::filesystem::path server_binary(const ServerSpec& spec)
{
    if (!spec.binary.empty()) return spec.binary;
    const char* bin = std::getenv("FORKLOCK_BIN");
    if (bin == nullptr || *bin == '\0')
        throw std::runtime_error("FORKLOCK_BIN is not set (run through meson test)");
    return bin;
}

// What the child execs: argv, and the environment with the caller's additions. LISTEN_PID's
// value is written by the child itself, into room made here, once it knows its pid.
struct ExecPlan {
    std::vector<char*> argv;
    std::vector<std::string> env;
    std::vector<char*> envp;
    char* listen_pid = nullptr; // the digits' place in env, or null without socket activation
    int listen_fd = -1;
};

void write_decimal(char* out, long value) // async-signal-safe
{
    char digits[24];
    int n = 0;
    do digits[n++] = static_cast<char>('0' + value % 10);
    while ((value /= 10) > 0);
    while (n > 0) *out++ = digits[--n];
    *out = '\0';
}

// pass_listen_socket: fd 3 and LISTEN_PID, as systemd sets them before exec.
void pass_listen_socket(const ExecPlan& plan)
{
    if (plan.listen_fd < 0) return;
    if (plan.listen_fd == 3)
        ::fcntl(3, F_SETFD, 0);
    else
        ::dup2(plan.listen_fd, 3);
    write_decimal(plan.listen_pid, ::getpid());
}

// Runs in the child between fork and exec: async-signal-safe calls only.
[[noreturn]] void exec_server(const ExecPlan& plan, int log_fd, pid_t parent)
{
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127); // the parent died before prctl: nobody to serve
    // exec keeps ignored signals and the mask: the client ignores SIGPIPE, a test may block some.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &default_action, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    pass_listen_socket(plan); // after the log: the log's fd may be 3
    ::execve(plan.argv[0], plan.argv.data(), plan.envp.data());
    const char message[] = "harness: execv(server) failed\n";
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
    ::_exit(127);
}

int decode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

} // namespace

std::optional<Endpoint> parse_listening_line(std::string_view log)
{
    constexpr std::string_view marker = "Listening at: http://";
    const auto at = log.find(marker);
    if (at == std::string_view::npos) return std::nullopt;
    std::string_view rest = log.substr(at + marker.size());
    const bool bracketed = rest.starts_with('['); // [::1]:PORT
    const auto host_end = rest.find(bracketed ? "]:" : ":");
    if (host_end == std::string_view::npos) return std::nullopt;
    Endpoint endpoint{std::string(rest.substr(bracketed ? 1 : 0, host_end - (bracketed ? 1 : 0))),
                      0};
    rest.remove_prefix(host_end + (bracketed ? 2 : 1));
    unsigned port = 0;
    const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), port);
    // The space after the port: a line still being written could end inside the number.
    if (error != std::errc() || port == 0 || port > 65535 || end == rest.data() + rest.size() ||
        *end != ' ')
        return std::nullopt;
    endpoint.port = static_cast<std::uint16_t>(port);
    return endpoint;
}

ServerProcess::ServerProcess(ServerSpec spec)
    : spec_(std::move(spec)), dir_(spec_.dir_prefix), log_path_(dir_.path() / "server.log")
{
    spawn();
    try {
        if (spec_.refused) return;
        wait_until_listening();
        if (spec_.workers > 0) wait_until_ready();
    } catch (...) {
        stop();
        throw;
    }
}

ServerProcess::ServerProcess(std::vector<std::string> args, int workers)
    : ServerProcess([&] {
          ServerSpec spec;
          spec.args = std::move(args);
          spec.workers = workers;
          return spec;
      }())
{
}

ServerProcess::~ServerProcess() { stop(); }

void ServerProcess::spawn()
{
    std::filesystem::path data_dir = spec_.data_dir;
    if (data_dir.empty()) std::filesystem::create_directory(data_dir = dir_.path() / "data");
    std::vector<std::string> args{server_binary(spec_).string()};
    args.insert(args.end(), spec_.args.begin(), spec_.args.end());
    if (spec_.add_bind && std::none_of(args.begin(), args.end(),
                                       [](const auto& a) { return a == "-b" || a == "--bind"; }))
        args.insert(args.end(), {"-b", "127.0.0.1:0"});
    if (!spec_.data_dir_flag.empty())
        args.insert(args.end(), {spec_.data_dir_flag, data_dir.string()});
    ExecPlan plan; // built before fork: the child may only make async-signal-safe calls
    for (auto& arg : args) plan.argv.push_back(arg.data());
    plan.argv.push_back(nullptr);
    for (char** e = environ; *e != nullptr; ++e) plan.env.emplace_back(*e);
    plan.env.insert(plan.env.end(), spec_.env.begin(), spec_.env.end());
    if (spec_.listen_fd >= 0) {
        plan.listen_fd = spec_.listen_fd;
        plan.env.push_back("LISTEN_FDS=" + spec_.listen_fds);
        plan.env.push_back("LISTEN_PID=" + std::string(24, '\0'));
        plan.listen_pid = plan.env.back().data() + std::string_view("LISTEN_PID=").size();
    }
    for (auto& entry : plan.env) plan.envp.push_back(entry.data());
    plan.envp.push_back(nullptr);

    const UniqueFd log_fd(
        ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!log_fd) throw os_error(errno, "open({})", log_path_.string());
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw os_error(errno, "fork()");
    if (pid_ == 0) exec_server(plan, log_fd.get(), parent);
    ::setpgid(pid_, pid_); // also here: whichever runs first, the group exists before we kill it
    if (spec_.hooks.spawned) spec_.hooks.spawned(pid_);
}

void ServerProcess::wait_until_listening()
{
    std::optional<Endpoint> listening;
    const bool up = wait_until(
        [&] {
            if (spec_.hooks.poll) spec_.hooks.poll();
            listening = parse_listening_line(log());
            if (!listening && master_exited())
                throw std::runtime_error(fmt::format("the server exited at start ({}):\n{}",
                                                     exit_status_.value_or(-1), log_tail()));
            return listening.has_value();
        },
        spec_.start_timeout, kPollInterval);
    if (!up)
        throw std::runtime_error("the server did not log \"Listening at:\" in time:\n" +
                                 log_tail());
    endpoint_ = *listening;
}

// Ready: /healthz answers and /workers lists every worker as booted. A worker is listed once
// forked but reports its configuration only when it serves; a test that reads the workers'
// mode or generation right after start would otherwise race their boot.
void ServerProcess::wait_until_ready()
{
    const bool ready = wait_until(
        [&] {
            if (master_exited())
                throw std::runtime_error(fmt::format("the server exited at start ({}):\n{}",
                                                     exit_status_.value_or(-1), log_tail()));
            if (http_request(endpoint_, "GET", "/healthz", 2s, spec_.hooks.poll).status != 200)
                return false;
            return std::ssize(booted_worker_pids(2s)) >= spec_.workers;
        },
        spec_.start_timeout, 5 * kPollInterval);
    if (!ready)
        throw std::runtime_error(fmt::format("the server did not boot {} workers in time:\n{}",
                                             spec_.workers, log_tail()));
}

void ServerProcess::signal(int sig) const
{
    if (pid_ > 0 && ::kill(pid_, sig) != 0) throw os_error(errno, "kill({}, {})", pid_, sig);
}

nlohmann::json ServerProcess::listed_workers(Clock::duration timeout) const
{
    const HttpResponse response =
        http_request(endpoint_, "GET", "/workers", timeout, spec_.hooks.poll);
    nlohmann::json body = response.json();
    if (response.status != 200 || !body.contains("workers")) return nlohmann::json::array();
    return std::move(body["workers"]);
}

std::set<pid_t> ServerProcess::worker_pids(Clock::duration timeout) const
{
    std::set<pid_t> pids;
    for (const auto& worker : listed_workers(timeout)) pids.insert(worker.value("pid", 0));
    return pids;
}

std::set<pid_t> ServerProcess::booted_worker_pids(Clock::duration timeout) const
{
    std::set<pid_t> pids;
    for (const auto& worker : listed_workers(timeout))
        if (worker.value("state", "booting") != "booting") pids.insert(worker.value("pid", 0));
    return pids;
}

std::string ServerProcess::log() const { return read_file(log_path_); }

std::string ServerProcess::dashboard_token() const
{
    constexpr std::string_view kMark = "/dashboard?token=";
    const std::string all = log();
    const std::size_t at = all.find(kMark);
    if (at == std::string::npos) return {};
    const std::size_t from = at + kMark.size();
    return all.substr(from, all.find(' ', from) - from);
}

HttpResponse ServerProcess::control(const std::string& target,
                                    std::chrono::milliseconds timeout) const
{
    return http_request(endpoint_, {"POST", target, {{"X-Forklock-Token", dashboard_token()}}, {}},
                        timeout);
}

int ServerProcess::count_in_log(std::string_view text) const
{
    const std::string all = log();
    int count = 0;
    for (auto at = all.find(text); at != std::string::npos; at = all.find(text, at + 1)) ++count;
    return count;
}

bool ServerProcess::wait_for_log(std::string_view text, std::chrono::milliseconds timeout) const
{
    return wait_until(
        [&] {
            if (spec_.hooks.poll) spec_.hooks.poll();
            return log().find(text) != std::string::npos;
        },
        timeout, kPollInterval);
}

std::string ServerProcess::log_tail(std::size_t lines) const
{
    const std::string all = log();
    std::size_t start = all.size();
    for (std::size_t seen = 0; start > 0 && seen <= lines;) {
        --start;
        if (all[start] == '\n') ++seen;
    }
    return all.substr(start);
}

bool ServerProcess::master_exited() noexcept
{
    if (exit_status_ || pid_ <= 0) return true;
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) exit_status_ = decode(status);
    if (done < 0 && errno == ECHILD) exit_status_ = -1; // reaped elsewhere: the status is lost
    return exit_status_.has_value();
}

std::optional<int> ServerProcess::wait_exit(std::chrono::milliseconds timeout)
{
    (void)wait_until([&] { return master_exited(); }, timeout, kPollInterval);
    return exit_status_;
}

void ServerProcess::stop() noexcept
{
    if (pid_ <= 0) return;
    if (!master_exited()) {
        int sig = SIGTERM;
        try {
            if (spec_.hooks.stop_signal) sig = spec_.hooks.stop_signal();
        } catch (...) {
        }
        ::kill(pid_, sig);
        if (!wait_until([&] { return master_exited(); }, spec_.stop_timeout, kPollInterval)) {
            ::kill(-pid_, SIGKILL);
            (void)wait_until([&] { return master_exited(); }, kKillWait, kPollInterval);
        }
    }
    reap_group();
    if (spec_.hooks.reaped) spec_.hooks.reaped(pid_);
    pid_ = -1;
}

// Waits for every process of the group: workers follow a dead master by themselves; those that
// overstay kGroupGrace are SIGKILLed. Orphaned workers re-parent to init, or to us if we are a
// child subreaper (the demo), so we reap those that are ours.
void ServerProcess::reap_group() noexcept
{
    const auto soft_deadline = Clock::now() + kGroupGrace;
    bool killed = false;
    const bool empty = wait_until(
        [&] {
            while (::waitpid(-pid_, nullptr, WNOHANG) > 0) {}
            if (!killed && Clock::now() >= soft_deadline) {
                ::kill(-pid_, SIGKILL);
                killed = true;
            }
            return ::kill(-pid_, 0) != 0;
        },
        kGroupGrace + kKillWait, kPollInterval);
    if (!empty) log_os_error(EBUSY, fmt::format("reaping server group {}", pid_));
}

} // namespace forklock::harness
