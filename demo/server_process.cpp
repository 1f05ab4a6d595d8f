#include "server_process.h"

#include <cctype>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "http_client.h"
#include "interrupt.h"
#include "os/os_error.h"
#include "os/unique_fd.h"

namespace forklock::demo {
namespace {

using namespace std::chrono_literals;

constexpr auto kStartTimeout = 15s;
constexpr auto kGracefulTimeout = 5; // seconds, passed to the server
constexpr auto kPollInterval = 10ms;

std::string read_file(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Runs in the child between fork and exec: async-signal-safe calls only.
[[noreturn]] void exec_server(const std::vector<char*>& argv, int log_fd, pid_t parent)
{
    ::setpgid(0, 0);
    // If the demo dies without stopping us (kill -9), the master gets TERM and stops its workers.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    struct sigaction default_action {}; // the demo ignores SIGPIPE; exec would keep that
    default_action.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &default_action, nullptr);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    const char message[] = "forklock-demo: execv(server) failed\n";
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
    ::_exit(127);
}

} // namespace

std::vector<std::string> server_args(const ServerConfig& config,
                                     const std::filesystem::path& data_dir)
{
    std::vector<std::string> args{"-w", std::to_string(config.workers), "--threads",
                                  std::to_string(config.threads), "-b", "127.0.0.1:0"};
    if (config.preload) args.emplace_back("--preload");
    args.insert(args.end(), {"--lock-mode", std::string(to_string(config.mode))});
    if (!config.lock_recovery) args.emplace_back("--no-lock-recovery");
    // -t 60: the crash act holds a key for 10 s; the hung-worker killer must not interfere.
    args.insert(args.end(), {"--data-dir", data_dir.string(), "-t", "60", "--graceful-timeout",
                             std::to_string(kGracefulTimeout), "--log-level", "info"});
    return args;
}

std::uint16_t parse_listening_port(std::string_view log)
{
    constexpr std::string_view marker = "Listening at: http://127.0.0.1:";
    const std::size_t at = log.find(marker);
    if (at == std::string_view::npos) return 0;
    unsigned port = 0;
    for (std::size_t i = at + marker.size(); i < log.size() && std::isdigit(log[i]) != 0; ++i) {
        port = port * 10 + static_cast<unsigned>(log[i] - '0');
        if (port > 65535) return 0;
    }
    return static_cast<std::uint16_t>(port);
}

ServerProcess::ServerProcess(const std::filesystem::path& binary, const ServerConfig& config)
    : dir_("forklock-demo"), log_path_(dir_.path() / "server.log")
{
    spawn(binary, config);
    try {
        wait_until_listening();
        wait_until_workers_booted(config.workers);
    } catch (...) {
        stop();
        throw;
    }
}

ServerProcess::~ServerProcess() { stop(); }

void ServerProcess::spawn(const std::filesystem::path& binary, const ServerConfig& config)
{
    const auto data_dir = dir_.path() / "data";
    std::filesystem::create_directory(data_dir);
    std::vector<std::string> args = server_args(config, data_dir);
    args.insert(args.begin(), binary.string());
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    const UniqueFd log_fd(::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!log_fd) throw os_error(errno, "open({})", log_path_.string());
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw os_error(errno, "fork()");
    if (pid_ == 0) exec_server(argv, log_fd.get(), parent);
    ::setpgid(pid_, pid_); // also here: whichever runs first, the group exists before we kill it
    running_ = true;
    register_server_group(pid_);
}

void ServerProcess::wait_until_listening()
{
    const auto deadline = Clock::now() + kStartTimeout;
    while (Clock::now() < deadline) {
        throw_if_interrupted();
        port_ = parse_listening_port(read_file(log_path_));
        if (port_ != 0) return;
        if (master_exited()) throw std::runtime_error("the server exited at start:\n" + log_tail());
        std::this_thread::sleep_for(kPollInterval);
    }
    throw std::runtime_error("the server did not log \"Listening at:\" in time:\n" + log_tail());
}

void ServerProcess::wait_until_workers_booted(int workers)
{
    const auto deadline = Clock::now() + kStartTimeout;
    while (Clock::now() < deadline) {
        try {
            const auto reply = http_request(port_, "GET", "/workers", 2s).json();
            if (reply.contains("workers") && std::ssize(reply["workers"]) >= workers) return;
        } catch (const HttpError&) {
        } catch (const std::system_error&) {
        }
        if (master_exited()) throw std::runtime_error("the server exited at start:\n" + log_tail());
        std::this_thread::sleep_for(kPollInterval * 5);
    }
    throw std::runtime_error(fmt::format("the server did not boot {} workers in time:\n{}",
                                         workers, log_tail()));
}

bool ServerProcess::master_exited() noexcept
{
    if (!running_) return true;
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_ || (done < 0 && errno == ECHILD)) running_ = false;
    return !running_;
}

void ServerProcess::stop() noexcept
{
    if (pid_ <= 0) return;
    // Graceful normally; quick (INT, as gunicorn) once the user pressed Ctrl-C.
    if (!master_exited()) ::kill(pid_, interrupted() ? SIGINT : SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(kGracefulTimeout + 3);
    while (!master_exited() && Clock::now() < deadline) std::this_thread::sleep_for(kPollInterval);
    reap_group(2s);
    unregister_server_group(pid_);
    pid_ = -1;
}

// Waits for every process of the group (orphaned workers are re-parented to the demo, a child
// subreaper, so we reap them too), then SIGKILLs whatever is left.
void ServerProcess::reap_group(std::chrono::milliseconds grace) noexcept
{
    const auto soft_deadline = Clock::now() + grace;
    const auto hard_deadline = soft_deadline + 3s;
    bool killed = false;
    while (::kill(-pid_, 0) == 0 && Clock::now() < hard_deadline) {
        if (!killed && Clock::now() >= soft_deadline) {
            ::kill(-pid_, SIGKILL);
            killed = true;
        }
        while (::waitpid(-pid_, nullptr, WNOHANG) > 0) {
        }
        std::this_thread::sleep_for(kPollInterval);
    }
    if (::kill(-pid_, 0) == 0) log_os_error(EBUSY, fmt::format("reaping server group {}", pid_));
    while (::waitpid(-pid_, nullptr, WNOHANG) > 0) {
    }
    running_ = false;
}

bool ServerProcess::wait_for_log(std::string_view text, std::chrono::milliseconds timeout)
{
    const auto deadline = Clock::now() + timeout;
    while (read_file(log_path_).find(text) == std::string::npos) {
        throw_if_interrupted();
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(kPollInterval);
    }
    return true;
}

std::string ServerProcess::log_tail(std::size_t lines) const
{
    const std::string log = read_file(log_path_);
    std::size_t start = log.size();
    for (std::size_t seen = 0; start > 0 && seen <= lines;) {
        --start;
        if (log[start] == '\n') ++seen;
    }
    return log.substr(start);
}

} // namespace forklock::demo
