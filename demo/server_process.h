#pragma once
// ServerProcess: one real `forklock` server for one scenario, in its own temporary directory
// (data/ and server.log) and its own process group, so that stopping it can never leave a
// worker behind. Started on port 0; the port is read from the "Listening at:" log line.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

#include "locks/lock_mode.h"
#include "temp_dir.h"

namespace forklock::demo {

struct ServerConfig {
    LockMode mode = LockMode::none;
    bool preload = false;
    int workers = 1;
    int threads = 1;
    bool lock_recovery = true;
};

// The server's command line for a config (argv[1..]), pure so it can be tested.
std::vector<std::string> server_args(const ServerConfig& config,
                                     const std::filesystem::path& data_dir);

// Finds the port in a log containing "Listening at: http://127.0.0.1:PORT (PID)"; 0 if absent.
std::uint16_t parse_listening_port(std::string_view log);

class ServerProcess final {
public:
    // Starts the server and returns once it listens and all its workers have booted.
    // Throws std::runtime_error (with the log's tail) when it does not come up in time.
    ServerProcess(const std::filesystem::path& binary, const ServerConfig& config);
    ~ServerProcess();
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] pid_t master_pid() const noexcept { return pid_; }
    // SIGTERM (graceful), wait with a deadline, then SIGKILL to the whole group. Never throws.
    void stop() noexcept;
    // Waits (at most `timeout`) until the log contains `text`; false if it never did.
    [[nodiscard]] bool wait_for_log(std::string_view text, std::chrono::milliseconds timeout);
    // The last lines of the server's log, for error messages.
    [[nodiscard]] std::string log_tail(std::size_t lines = 15) const;

private:
    void spawn(const std::filesystem::path& binary, const ServerConfig& config);
    void wait_until_listening();
    void wait_until_workers_booted(int workers);
    [[nodiscard]] bool master_exited() noexcept;
    void reap_group(std::chrono::milliseconds grace) noexcept;

    TempDir dir_;
    std::filesystem::path log_path_;
    pid_t pid_ = -1;
    bool running_ = false;
    std::uint16_t port_ = 0;
};

} // namespace forklock::demo
