#include "harness/redis_server.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "harness/spawn.h"
#include "os/unique_fd.h"

namespace forklock::harness {
namespace {

constexpr const char* kBinary = "/usr/bin/redis-server";
constexpr auto kStopTimeout = std::chrono::seconds(10);

} // namespace

bool RedisServer::available() { return ::access(kBinary, X_OK) == 0; }

RedisServer::RedisServer(std::chrono::milliseconds start_timeout) : dir_("forklock-redis")
{
    start(start_timeout);
}

RedisServer::~RedisServer() { stop(); }

void RedisServer::start(std::chrono::milliseconds timeout)
{
    if (pid_ != 0) return;
    const std::string dir = dir_.path().string();
    pid_ = spawn({kBinary, "--port", "0", "--unixsocket", socket().string(), "--unixsocketperm",
                  "700", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"},
                 dir + "/redis.log", dir, RunAs{}, SIGKILL);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!answers_ping()) {
        const bool exited = wait_exit(pid_, std::chrono::milliseconds(0)) != -1;
        if (exited) pid_ = 0;
        if (exited || std::chrono::steady_clock::now() >= deadline) {
            stop();
            throw std::runtime_error(fmt::format("RedisServer: redis-server {}: {}",
                                                 exited ? "exited" : "not ready in time",
                                                 log_tail(dir_.path() / "redis.log")));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

void RedisServer::stop(int sig) noexcept
{
    stop_child(pid_, sig, kStopTimeout);
    pid_ = 0;
}

// answers_ping: one PING in the inline protocol on the socket, "+PONG" back.
bool RedisServer::answers_ping() const
{
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = socket().string();
    if (!fd || path.size() >= sizeof addr.sun_path) return false;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return false;
    const timeval wait{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    if (::write(fd.get(), "PING\r\n", 6) != 6) return false;
    char reply[8] = {};
    return ::read(fd.get(), reply, 7) >= 5 && std::strncmp(reply, "+PONG", 5) == 0;
}

} // namespace forklock::harness
