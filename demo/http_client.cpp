// http_request: the socket half of the client (parsing is in http_parse.cpp).
#include "http_client.h"

#include <algorithm>
#include <cerrno>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "interrupt.h"
#include "os/os_error.h"
#include "os/unique_fd.h"

namespace forklock::demo {
namespace {

constexpr auto kPollSlice = std::chrono::milliseconds(100);

// Waits until fd is ready for `events`, in slices so Ctrl-C is noticed. Throws on deadline.
void wait_ready(int fd, short events, Clock::time_point deadline, const char* what)
{
    for (;;) {
        throw_if_interrupted();
        const auto left = deadline - Clock::now();
        if (left <= Clock::duration::zero()) throw HttpError(fmt::format("timed out {}", what));
        const auto slice = std::min<Clock::duration>(left, kPollSlice);
        const int ms = static_cast<int>(
            std::chrono::ceil<std::chrono::milliseconds>(slice).count());
        pollfd entry{fd, events, 0};
        const int ready = ::poll(&entry, 1, ms);
        if (ready > 0) return;
        if (ready < 0 && errno != EINTR) throw os_error(errno, "poll(fd {})", fd);
    }
}

UniqueFd connect_loopback(std::uint16_t port, Clock::time_point deadline)
{
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) throw os_error(errno, "socket(AF_INET, SOCK_STREAM)");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        if (errno != EINPROGRESS) throw os_error(errno, "connect(127.0.0.1:{})", port);
        wait_ready(fd.get(), POLLOUT, deadline, "connecting");
        int error = 0;
        socklen_t size = sizeof error;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size);
        if (error != 0) throw os_error(error, "connect(127.0.0.1:{})", port);
    }
    return fd;
}

void send_all(int fd, std::string_view data, Clock::time_point deadline)
{
    while (!data.empty()) {
        const ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (sent > 0) {
            data.remove_prefix(static_cast<std::size_t>(sent));
        } else if (errno == EAGAIN || errno == EINTR) {
            wait_ready(fd, POLLOUT, deadline, "sending");
        } else {
            throw os_error(errno, "send(fd {})", fd);
        }
    }
}

HttpResponse receive_response(int fd, Clock::time_point deadline)
{
    std::string raw;
    char buffer[16384];
    for (;;) {
        const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
        if (got > 0) {
            raw.append(buffer, static_cast<std::size_t>(got));
            if (auto response = parse_http_response(raw, false)) return *response;
        } else if (got == 0) {
            return *parse_http_response(raw, true);
        } else if (errno == EAGAIN || errno == EINTR) {
            wait_ready(fd, POLLIN, deadline, "waiting for the response");
        } else {
            throw os_error(errno, "recv(fd {})", fd);
        }
    }
}

} // namespace

HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view target,
                          Clock::duration timeout)
{
    const auto deadline = Clock::now() + timeout;
    const UniqueFd fd = connect_loopback(port, deadline);
    const std::string request = fmt::format(
        "{} {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        method, target, port);
    send_all(fd.get(), request, deadline);
    return receive_response(fd.get(), deadline);
}

} // namespace forklock::demo
