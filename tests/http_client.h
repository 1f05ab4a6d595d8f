#pragma once
// A small blocking HTTP/1.1 client for the end-to-end tests: one request per connection
// ("Connection: close"), read to EOF. Plain sockets, so it tests the server, not a library.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace test {

struct HttpResponse {
    int status = 0; // 0: no response (connection reset or closed early)
    std::map<std::string, std::string> headers; // names lower-cased
    std::string body;
    nlohmann::json json() const { return nlohmann::json::parse(body); }
};

inline int connect_to(std::uint16_t port)
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed: " + std::to_string(errno));
    }
    return fd;
}

inline HttpResponse parse_response(const std::string& raw)
{
    HttpResponse r;
    auto end = raw.find("\r\n\r\n");
    if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || end == std::string::npos) return r;
    r.status = std::stoi(raw.substr(9, 3));
    std::size_t pos = raw.find("\r\n") + 2;
    while (pos < end) {
        auto eol = raw.find("\r\n", pos);
        auto line = raw.substr(pos, eol - pos);
        auto colon = line.find(':');
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
        pos = eol + 2;
    }
    r.body = raw.substr(end + 4);
    return r;
}

// Sends `raw` as is, reads until the server closes or `timeout` passes.
inline std::string exchange_raw(std::uint16_t port, const std::string& raw,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10))
{
    int fd = connect_to(port);
    std::size_t sent = 0;
    while (sent < raw.size()) {
        ssize_t n = ::send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break; // the server may answer (413, 431) and close before reading it all
        sent += static_cast<std::size_t>(n);
    }
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) continue;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

inline HttpResponse request(std::uint16_t port, const std::string& method, const std::string& target,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10))
{
    std::string raw = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (method == "POST" || method == "PUT" || method == "PATCH") raw += "Content-Length: 0\r\n";
    raw += "\r\n";
    return parse_response(exchange_raw(port, raw, timeout));
}

} // namespace test
