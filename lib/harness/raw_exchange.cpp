#include "harness/raw_exchange.h"

#include <algorithm>
#include <cerrno>
#include <memory>
#include <system_error>

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include "os/os_error.h"

namespace forklock::harness {
namespace {

// Sends until done or the server stops reading (it may answer and close first).
void send_what_it_takes(int fd, std::string_view bytes)
{
    while (!bytes.empty()) {
        const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR) continue;
        if (sent <= 0) return;
        bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
}

} // namespace

UniqueFd connect_raw(const Endpoint& to)
{
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(to.port);
    if (const int rc = ::getaddrinfo(to.host.c_str(), port.c_str(), &hints, &found); rc != 0)
        throw std::system_error(
            EINVAL, std::generic_category(),
            fmt::format("getaddrinfo({}) failed: {}", to.host, ::gai_strerror(rc)));
    const std::unique_ptr<addrinfo, void (*)(addrinfo*)> address(found, ::freeaddrinfo);
    UniqueFd fd(::socket(address->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw os_error(errno, "socket({})", address->ai_family);
    if (::connect(fd.get(), address->ai_addr, address->ai_addrlen) != 0)
        throw os_error(errno, "connect({}:{})", to.host, to.port);
    return fd;
}

std::string raw_exchange(const Endpoint& to, std::string_view bytes,
                         std::chrono::milliseconds timeout)
{
    const UniqueFd fd = connect_raw(to);
    send_what_it_takes(fd.get(), bytes);
    std::string received;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    for (auto left = timeout; left > std::chrono::milliseconds::zero();
         left = std::chrono::duration_cast<std::chrono::milliseconds>(
             deadline - std::chrono::steady_clock::now())) {
        pollfd entry{fd.get(), POLLIN, 0};
        const int ready = ::poll(&entry, 1, static_cast<int>(std::max<long>(1, left.count())));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) break;
        const ssize_t got = ::recv(fd.get(), buffer, sizeof buffer, 0);
        if (got <= 0) break; // EOF, or a reset after the server answered
        received.append(buffer, static_cast<std::size_t>(got));
    }
    return received;
}

std::string next_response(int fd, std::string& buffer,
                          std::chrono::steady_clock::time_point deadline)
{
    for (;;) {
        if (const std::size_t head = buffer.find("\r\n\r\n"); head != std::string::npos) {
            const std::size_t at = buffer.find("Content-Length: ");
            const std::size_t length =
                at < head ? std::stoul(buffer.substr(at + 16)) : std::size_t{0};
            if (buffer.size() >= head + 4 + length) {
                std::string response = buffer.substr(0, head + 4 + length);
                buffer.erase(0, response.size());
                return response;
            }
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd entry{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&entry, 1, static_cast<int>(left.count())) <= 0) return {};
        char chunk[16384];
        const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
        if (got <= 0) return {};
        buffer.append(chunk, static_cast<std::size_t>(got));
    }
}

std::string raw_response(const Endpoint& to, std::string_view bytes,
                         std::chrono::milliseconds timeout)
{
    const UniqueFd fd = connect_raw(to);
    send_what_it_takes(fd.get(), bytes);
    std::string buffer;
    return next_response(fd.get(), buffer, std::chrono::steady_clock::now() + timeout);
}

} // namespace forklock::harness
