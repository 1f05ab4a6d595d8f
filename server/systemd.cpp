#include "systemd.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "app/log.h"
#include "os/unique_fd.h"

namespace forklock {
namespace {

constexpr int kFirstListenFd = 3; // SD_LISTEN_FDS_START

std::optional<long> parse_number(const char* text)
{
    if (text == nullptr) return std::nullopt;
    long value = 0;
    const char* end = text + std::strlen(text);
    auto [at, ec] = std::from_chars(text, end, value);
    if (ec != std::errc() || at != end || at == text) return std::nullopt;
    return value;
}

int socket_option(int fd, int name)
{
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, name, &value, &len) != 0) return -1;
    return value;
}

// why_not_served: "" when `fd` is a listening TCP stream socket, else why not (sd_is_socket_inet's
// checks: a socket, of the stream type, listening, of an inet family).
std::string why_not_served(int fd)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0) return fmt::format("fd {} is not open", fd);
    if (!S_ISSOCK(st.st_mode)) return fmt::format("fd {} is not a socket", fd);
    if (socket_option(fd, SO_TYPE) != SOCK_STREAM)
        return fmt::format("fd {} is not a stream socket (ListenStream=)", fd);
    if (socket_option(fd, SO_ACCEPTCONN) != 1) return fmt::format("fd {} is not listening", fd);
    const int family = socket_option(fd, SO_DOMAIN);
    if (family != AF_INET && family != AF_INET6)
        return fmt::format("fd {} is not a TCP socket: forklock serves HTTP on HOST:PORT", fd);
    return "";
}

void unset_listen_variables()
{
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
}

} // namespace

std::optional<UniqueFd> take_listen_socket()
{
    const auto pid = parse_number(std::getenv("LISTEN_PID"));
    if (!pid || *pid != ::getpid()) return std::nullopt;
    const char* fds_text = std::getenv("LISTEN_FDS");
    const auto fds = parse_number(fds_text);
    unset_listen_variables();
    if (!fds || *fds < 0)
        throw SocketActivationError(
            fmt::format("socket activation: LISTEN_FDS='{}' is not a count of sockets",
                        fds_text ? fds_text : ""));
    if (*fds != 1)
        throw SocketActivationError(fmt::format(
            "socket activation: systemd passed {} sockets (LISTEN_FDS={}); forklock serves one: "
            "give the .socket unit exactly one ListenStream=",
            *fds, *fds));
    if (auto problem = why_not_served(kFirstListenFd); !problem.empty())
        throw SocketActivationError(fmt::format("socket activation: {}", problem));
    return UniqueFd(kFirstListenFd);
}

Notifier::Notifier(bool main) : main_(main)
{
    const char* socket = std::getenv("NOTIFY_SOCKET");
    if (socket == nullptr || *socket == '\0') return;
    address_ = socket;
    variable_ = socket;
    ::unsetenv("NOTIFY_SOCKET");
    if (address_.front() == '@') address_.front() = '\0'; // the abstract namespace
    if (address_.size() >= sizeof(sockaddr_un::sun_path) ||
        (address_.front() != '/' && address_.front() != '\0')) {
        log(LogLevel::warning, "NOTIFY_SOCKET='{}' is not a unix socket path: not notifying",
            socket);
        address_.clear();
        variable_.clear();
    }
}

void Notifier::send(std::string_view message) noexcept
{
    if (!enabled() || !main_) return;
    sockaddr_un to{};
    to.sun_family = AF_UNIX;
    std::memcpy(to.sun_path, address_.data(), address_.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    const bool sent = fd && ::sendto(fd.get(), message.data(), message.size(), MSG_NOSIGNAL,
                                     reinterpret_cast<const sockaddr*>(&to),
                                     len) == static_cast<ssize_t>(message.size());
    if (!sent && !failed_)
        log(LogLevel::warning, "sd_notify to NOTIFY_SOCKET failed: {}", std::strerror(errno));
    failed_ = failed_ || !sent;
}

void Notifier::reloading(std::string_view status) noexcept
{
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const long long usec = now.tv_sec * 1'000'000LL + now.tv_nsec / 1000;
    try {
        send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS={}", usec, status));
    } catch (...) { // fmt::format can only fail to allocate; the reload goes on without a word
    }
}

} // namespace forklock
