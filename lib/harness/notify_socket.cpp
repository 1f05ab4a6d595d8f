#include "harness/notify_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "os/os_error.h"

namespace forklock::harness {

NotifySocket::NotifySocket(std::filesystem::path path)
    : path_(std::move(path)), fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0))
{
    if (!fd_) throw os_error(errno, "socket(AF_UNIX, SOCK_DGRAM)");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string text = path_.string();
    if (text.size() >= sizeof addr.sun_path) throw os_error(ENAMETOOLONG, "bind({})", text);
    std::memcpy(addr.sun_path, text.c_str(), text.size() + 1);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw os_error(errno, "bind({})", text);
}

NotifySocket::~NotifySocket()
{
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
}

std::optional<std::string> NotifySocket::next(std::chrono::milliseconds timeout)
{
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buffer[4096];
    const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
    if (n < 0) return std::nullopt;
    return std::string(buffer, static_cast<std::size_t>(n));
}

std::optional<std::string> NotifySocket::wait_for(const std::string& line,
                                                  std::vector<std::string>& seen,
                                                  std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        auto message = next(left);
        if (!message) return std::nullopt;
        seen.push_back(*message);
        if (has_line(*message, line)) return message;
    }
}

bool has_line(const std::string& message, const std::string& line)
{
    std::istringstream lines(message);
    for (std::string one; std::getline(lines, one);)
        if (one == line) return true;
    return false;
}

} // namespace forklock::harness
