#pragma once
// RedisServer: a throwaway redis-server for the tests, the demo and the benchmark, made and
// destroyed by one object. The contract:
// - Where: a private temporary directory ($TMPDIR or /tmp, "forklock-redis.XXXXXX"); the server
//   listens on the Unix socket redis.sock in it only (--port 0: no TCP port is taken), so nothing
//   outside the directory can reach it but a process of the same user (or root).
// - Nothing kept: --save '' and --appendonly no, so a restart starts empty (held keys and fencing
//   counters are gone, as with a Redis without persistence in production).
// - Start: the constructor returns once the server answers PING on its socket, or throws
//   std::runtime_error with the tail of its log if it exits or is not ready by the timeout.
// - Stop: the destructor sends SIGTERM, SIGKILLs it after 10 s, reaps it and removes the
//   directory. Also when a test fails and unwinds through it.
// - Death of the owner: redis-server gets SIGKILL through PR_SET_PDEATHSIG when the thread that
//   constructed the RedisServer dies, so construct it on the main thread. The directory is
//   then left in $TMPDIR.
// - Restart in place: stop() then start(): the socket path, hence url(), stays the same; while
//   it is stopped the socket file is gone, so a connect fails at once.
// - Needs /usr/bin/redis-server (Debian's redis-server); available() says whether it is there.
// Not copyable or movable; not thread-safe. Clients may connect from any thread or process.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "harness/temp_dir.h"

namespace forklock::harness {

class RedisServer final {
public:
    explicit RedisServer(std::chrono::milliseconds start_timeout = std::chrono::seconds(30));
    ~RedisServer();
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    [[nodiscard]] static bool available();

    // url: "unix:///TMP/forklock-redis.XXXXXX/redis.sock", for --lock-url and LockTableOptions.
    [[nodiscard]] std::string url() const { return "unix://" + socket().string(); }
    [[nodiscard]] std::filesystem::path socket() const { return dir_.path() / "redis.sock"; }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    // stop: `sig` (SIGKILL after 10 s), waited for. Nothing if it is not running. SIGKILL is
    // Redis killed while serving: its clients see the connection drop, and nothing is saved.
    void stop(int sig = SIGTERM) noexcept;
    // start: starts it again on the same socket and waits for PING, as the constructor does.
    void start(std::chrono::milliseconds timeout = std::chrono::seconds(30));

private:
    [[nodiscard]] bool answers_ping() const;

    TempDir dir_; // declared first: removed after the server has stopped
    pid_t pid_ = 0;
};

} // namespace forklock::harness
