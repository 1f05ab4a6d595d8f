#pragma once
// ServerProcess: one real `forklock` server for a test or a demo scenario. It runs in its own
// temporary directory (server.log, and data/ unless the caller names a data directory) and its
// own process group, on a free loopback port the kernel picks (-b 127.0.0.1:0; the port is read
// from the "Listening at:" log line). Stopping it (TERM, KILL after a deadline, then the whole
// group) never leaves a worker behind, and the server gets PR_SET_PDEATHSIG(SIGKILL): when the
// thread that started it dies (a crashed test, a killed demo), so does the master, and its
// workers follow it. So start servers from a thread that outlives them (the main thread).
// Not thread-safe: one thread drives a ServerProcess; HTTP to it may come from any thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "harness/http_client.h"
#include "harness/temp_dir.h"

namespace forklock::harness {

// What a caller with its own Ctrl-C handling plugs in (the demo); tests leave them empty.
struct ServerHooks {
    PollHook poll;                      // in every wait slice; may throw to give the wait up
    std::function<int()> stop_signal;   // the signal stop() sends first; empty: SIGTERM
    std::function<void(pid_t)> spawned; // the new process group (its id is the master's pid)
    std::function<void(pid_t)> reaped;  // that group is gone
};

struct ServerSpec {
    std::filesystem::path binary;   // empty: $FORKLOCK_BIN
    std::vector<std::string> args;  // flags; "-b 127.0.0.1:0" is added when there is no -b
    std::filesystem::path data_dir; // empty: data/ in the server's own directory
    std::string data_dir_flag = "--data-dir"; // how the binary is told data_dir; empty: it is
                                              // not forklock (the demo's gunicorn): no flag
    int workers = 1;                // wait for /healthz and this many in /workers; 0: only
                                    // for "Listening at:"
    bool refused = false;           // expected to exit before it listens: wait for nothing
    std::chrono::milliseconds start_timeout{15'000};
    std::chrono::milliseconds stop_timeout{10'000}; // from the first signal to SIGKILL
    std::string dir_prefix = "forklock-server";
    ServerHooks hooks;
    bool add_bind = true;         // add "-b 127.0.0.1:0" when args have none (false: -c FILE or
                                  // systemd names the address)
    std::vector<std::string> env; // "NAME=VALUE": added to the server's environment
    // Socket activation as systemd does it: this fd (the caller's, left open) becomes the
    // server's fd 3, with LISTEN_PID = the server's pid and LISTEN_FDS = listen_fds.
    int listen_fd = -1;
    std::string listen_fds = "1";
};

// The address in "Listening at: http://HOST:PORT (PID)"; nullopt when no such line is there.
[[nodiscard]] std::optional<Endpoint> parse_listening_line(std::string_view log);

class ServerProcess final {
public:
    // Starts the server and returns once it is ready as spec.workers asks. Throws
    // std::runtime_error (with the log's tail) when it exits or is not ready in time, and
    // whatever the poll hook throws; the server is stopped first.
    explicit ServerProcess(ServerSpec spec);
    // A test's shorthand: `args` on $FORKLOCK_BIN, waiting for `workers` workers.
    ServerProcess(std::vector<std::string> args, int workers);
    ~ServerProcess();
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    [[nodiscard]] const Endpoint& endpoint() const noexcept { return endpoint_; }
    [[nodiscard]] std::uint16_t port() const noexcept { return endpoint_.port; }
    // The master's pid, which is also its process group's id; -1 once stopped.
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_.path(); }

    // signal sends `sig` to the master (not to its group).
    void signal(int sig) const;
    // The pids GET /workers lists (empty when it does not answer within `timeout`).
    [[nodiscard]] std::set<pid_t>
    worker_pids(Clock::duration timeout = std::chrono::seconds(5)) const;
    // The pids of the listed workers that have booted (they report their configuration).
    [[nodiscard]] std::set<pid_t>
    booted_worker_pids(Clock::duration timeout = std::chrono::seconds(5)) const;

    // The controls' token: the one the master logged at start ("" before that line).
    [[nodiscard]] std::string dashboard_token() const;
    // control POSTs `target` (a /control/... path) with the token in X-Forklock-Token.
    [[nodiscard]] HttpResponse
    control(const std::string& target,
            std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

    // The whole server log (stdout and stderr) so far.
    [[nodiscard]] std::string log() const;
    [[nodiscard]] int count_in_log(std::string_view text) const;
    // Waits (at most `timeout`) until the log contains `text`; false if it never did.
    [[nodiscard]] bool
    wait_for_log(std::string_view text,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
    // The last `lines` lines of the log, for error messages.
    [[nodiscard]] std::string log_tail(std::size_t lines = 15) const;

    // wait_exit waits at most `timeout` for the master to exit (it is reaped): its exit code, or
    // 128 + the signal that killed it; nullopt while it runs. Its workers may still be exiting.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    // stop sends the stop signal, SIGKILLs the group after spec.stop_timeout, then waits for (and
    // reaps, where they are our children) every process of the group. Idempotent; never throws.
    void stop() noexcept;

private:
    void spawn();
    void wait_until_listening();
    void wait_until_ready();
    // GET /workers' list (empty when it does not answer within `timeout`).
    [[nodiscard]] nlohmann::json listed_workers(Clock::duration timeout) const;
    [[nodiscard]] bool master_exited() noexcept;
    void reap_group() noexcept;

    ServerSpec spec_;
    TempDir dir_;
    std::filesystem::path log_path_;
    pid_t pid_ = -1;
    std::optional<int> exit_status_;
    Endpoint endpoint_;
};

} // namespace forklock::harness
