#include "listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <system_error>

#include "os/os_error.h"

namespace forklock {
namespace {

constexpr int kBacklog = 2048; // the kernel caps it at net.core.somaxconn

std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> resolve(const BindAddress& a)
{
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* list = nullptr;
    auto port = std::to_string(a.port);
    int rc = ::getaddrinfo(a.host.c_str(), port.c_str(), &hints, &list);
    if (rc != 0)
        throw std::system_error(
            EINVAL, std::generic_category(),
            fmt::format("getaddrinfo({}, {}) failed: {}", a.host, port, ::gai_strerror(rc)));
    return {list, &::freeaddrinfo};
}

// bind_one: a listening socket on `ai`; errors name the call and `where` (the address asked for).
UniqueFd bind_one(const addrinfo& ai, const std::string& where)
{
    UniqueFd fd(
        ::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol));
    if (!fd) throw os_error(errno, "socket({}, SOCK_STREAM)", ai.ai_family);
    int on = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
        throw os_error(errno, "setsockopt(SO_REUSEADDR)");
    if (::bind(fd.get(), ai.ai_addr, ai.ai_addrlen) != 0) throw os_error(errno, "bind({})", where);
    if (::listen(fd.get(), kBacklog) != 0)
        throw os_error(errno, "listen({}, {})", where, kBacklog);
    return fd;
}

BindAddress bound_address(int fd)
{
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        throw os_error(errno, "getsockname({})", fd);
    char host[INET6_ADDRSTRLEN] = {};
    BindAddress out;
    if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        out.port = ntohs(a->sin6_port);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        out.port = ntohs(a->sin_port);
    }
    out.host = host;
    return out;
}

} // namespace

std::uint32_t accept_backlog(int fd) noexcept
{
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return 0;
    return info.tcpi_unacked;
}

Listener::Listener(const BindAddress& address)
{
    auto list = resolve(address);
    std::system_error last(EADDRNOTAVAIL, std::generic_category(),
                           "bind(" + address.host + ") failed");
    const std::string where = bind_url(address);
    for (addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
        try {
            fd_ = bind_one(*ai, where);
            bound_ = bound_address(fd_.get());
            return;
        } catch (const std::system_error& e) {
            last = e; // its message already names the call, the address and errno
        }
    }
    throw last;
}

Listener::Listener(UniqueFd listening) : fd_(std::move(listening))
{
    const int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK) != 0 ||
        ::fcntl(fd_.get(), F_SETFD, FD_CLOEXEC) != 0)
        throw os_error(errno, "fcntl({}, O_NONBLOCK, FD_CLOEXEC)", fd_.get());
    bound_ = bound_address(fd_.get());
}

} // namespace forklock
