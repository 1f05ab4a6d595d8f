#pragma once
// ServerProcess: runs the real forklock binary ($FORKLOCK_BIN) on 127.0.0.1:0 for a test, reads
// its stderr on a thread, parses the port from "Listening at:", and stops it (TERM, then KILL)
// when the test ends. Helpers wait on conditions with deadlines, never fixed sleeps.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "http_client.h"

namespace test {

using namespace std::chrono_literals;

// Polls `condition` until it holds or `timeout` passes.
inline bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return condition();
}

// A fresh directory for one test, removed when the test ends, even when it fails.
class TempDir : public std::filesystem::path {
public:
    explicit TempDir(const std::string& tag)
        : std::filesystem::path(std::filesystem::temp_directory_path() /
                                ("forklock-test-" + tag + "-" + std::to_string(::getpid())))
    {
        std::filesystem::remove_all(*this);
        std::filesystem::create_directories(*this);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(*this, ignored);
    }
};

inline TempDir temp_dir(const std::string& tag) { return TempDir(tag); }

class ServerProcess {
public:
    // Starts `forklock ARGS -b 127.0.0.1:0 --data-dir DIR` and waits for every worker to boot.
    ServerProcess(std::vector<std::string> args, const std::filesystem::path& data_dir, int workers_expected = -1)
    {
        const char* bin = std::getenv("FORKLOCK_BIN");
        if (bin == nullptr) throw std::runtime_error("FORKLOCK_BIN is not set");
        args.insert(args.begin(), bin);
        bool has_bind = std::find(args.begin(), args.end(), "-b") != args.end();
        if (!has_bind) args.insert(args.end(), {"-b", "127.0.0.1:0"});
        args.push_back("--data-dir");
        args.push_back(data_dir.string());
        spawn(args);
        try {
            wait_until_listening(workers_expected);
        } catch (...) {
            stop();
            throw;
        }
    }
    ~ServerProcess() { stop(); }
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    void wait_until_listening(int workers_expected)
    {
        if (!wait_for_log("Listening at: ", 10s)) throw std::runtime_error("no Listening line:\n" + log());
        std::smatch m;
        std::string text = log();
        if (!std::regex_search(text, m, std::regex(R"(Listening at: http://[^ ]*:(\d+) \((\d+)\))")))
            throw std::runtime_error("bad Listening line:\n" + text);
        port = static_cast<std::uint16_t>(std::stoi(m[1]));
        if (workers_expected > 0 && !eventually([&] { return count_in_log("Booting worker with pid") >= workers_expected; }, 10s))
            throw std::runtime_error("workers did not boot:\n" + log());
    }
    // TERM, then KILL if it takes more than 10 s; joins the log reader.
    void stop()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            if (!wait_exit(10s)) {
                ::kill(pid_, SIGKILL);
                wait_exit(5s);
            }
        }
        if (reader_.joinable()) reader_.join();
    }

    pid_t pid() const { return pid_; }
    void signal(int sig) const { ::kill(pid_, sig); }

    std::string log() const
    {
        std::lock_guard lock(mutex_);
        return log_;
    }
    int count_in_log(const std::string& needle) const
    {
        std::string text = log();
        int n = 0;
        for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
        return n;
    }
    bool wait_for_log(const std::string& needle, std::chrono::milliseconds timeout = 5s) const
    {
        return eventually([&] { return log().find(needle) != std::string::npos; }, timeout);
    }

    // Waits for the master to exit; its exit status (code, or 128+signal) if it did.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout)
    {
        std::optional<int> result;
        eventually([&] {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
            result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            pid_ = -1;
            return true;
        }, timeout);
        return result;
    }

    // Worker pids from GET /workers.
    std::set<int> worker_pids() const
    {
        auto r = request(port, "GET", "/workers");
        std::set<int> pids;
        if (r.status == 200) {
            auto body = r.json(); // named: a range-for over a temporary's member dangles
            for (const auto& w : body["workers"]) pids.insert(w["pid"].get<int>());
        }
        return pids;
    }

    std::uint16_t port = 0;

private:
    void spawn(const std::vector<std::string>& args)
    {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        std::vector<char*> argv; // built before fork: the child may only make async-signal-safe calls
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGTERM); // a crashed test must not leave a server behind
            ::dup2(fds[1], STDERR_FILENO);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        reader_ = std::thread([this, fd = fds[0]] {
            char buf[4096];
            ssize_t n;
            while ((n = ::read(fd, buf, sizeof buf)) > 0) {
                std::lock_guard lock(mutex_);
                log_.append(buf, static_cast<std::size_t>(n));
            }
            ::close(fd);
        });
    }

    pid_t pid_ = -1;
    mutable std::mutex mutex_;
    std::string log_;
    std::thread reader_;
};

// Runs `count` increments of `key` at once, each on its own thread and connection.
inline std::vector<HttpResponse> concurrent_increments(std::uint16_t port, const std::string& key, int count,
                                                       int hold_ms)
{
    std::vector<HttpResponse> out(static_cast<std::size_t>(count));
    std::vector<std::thread> threads;
    for (int i = 0; i < count; ++i)
        threads.emplace_back([&, i] {
            out[static_cast<std::size_t>(i)] =
                request(port, "POST", "/counter/" + key + "/increment?hold_ms=" + std::to_string(hold_ms), 30s);
        });
    for (auto& t : threads) t.join();
    return out;
}

} // namespace test

namespace test {

struct Exit {
    int code = -1;
    std::string out; // stdout and stderr
};

// Runs $FORKLOCK_BIN with `args` to completion (killed after `timeout`).
inline Exit run_to_exit(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 5s)
{
    std::string cmd = "timeout -s KILL " + std::to_string(timeout.count() / 1000 + 1) + " " + std::getenv("FORKLOCK_BIN");
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " 2>&1";
    Exit e;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return e;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) e.out += buf;
    int status = ::pclose(p);
    e.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return e;
}

} // namespace test
