// Strict HTTP on the real binary: what the request screen refuses gets a JSON 400, 501 or 505 with
// Connection: close and a closed connection; what it lets through reaches the API, pipelined or
// chunked; and the header, body and keep-alive timeouts close connections, slowloris included.

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "harness/raw_exchange.h"
#include "harness/server_process.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;
using forklock::UniqueFd;

namespace {

struct Reply {
    std::string bytes;
    bool closed = false; // the server closed (EOF or reset) before the deadline
};

// Reads from `fd` until EOF, a reset, or `timeout`.
Reply read_reply(int fd, std::chrono::milliseconds timeout)
{
    Reply r;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) return r;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) {
            r.closed = true;
            return r;
        }
        r.bytes.append(buffer, static_cast<std::size_t>(n));
    }
}

Reply send_and_read(const Endpoint& to, const std::string& bytes,
                    std::chrono::milliseconds timeout = 5s)
{
    const UniqueFd fd = connect_raw(to);
    REQUIRE(::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
    return read_reply(fd.get(), timeout);
}

int count(const std::string& text, const std::string& what)
{
    int n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// A refusal as the screen writes it: the status, JSON naming `rule`, close, and closed.
void check_refused(const Reply& r, int status, const std::string& rule)
{
    INFO(r.bytes);
    CHECK(r.bytes.rfind("HTTP/1.1 " + std::to_string(status) + " ", 0) == 0);
    CHECK(r.bytes.find("Connection: close\r\n") != std::string::npos);
    CHECK(r.bytes.find("Content-Type: application/json\r\n") != std::string::npos);
    const auto body = r.bytes.substr(std::min(r.bytes.size(), r.bytes.find("\r\n\r\n") + 4));
    const auto json = nlohmann::json::parse(body, nullptr, false);
    REQUIRE(json.is_object());
    CHECK(json.value("error", "").find(rule) != std::string::npos);
    CHECK(r.closed);
}

const std::string kGet = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

} // namespace

TEST_CASE("Strict HTTP: the server refuses ambiguous framing with 400 and closes",
          "[server_strict_http]")
{
    ServerProcess server({"-w", "1"}, 1);
    const std::string head = "POST /counter/a/increment HTTP/1.1\r\nHost: localhost\r\n";
    struct Case {
        std::string bytes;
        int status;
        std::string rule;
    };
    const Case cases[] = {
        {head + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
         "duplicate Content-Length"},
        {head + "Content-Length: -0\r\n\r\n", 400, "digits only"},
        {head + "Content-Length : 1\r\n\r\na", 400, "colon"},
        {head + "X: a\r\n b\r\n\r\n", 400, "obs-fold"},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "HTTP/1.0"},
        {head + "Transfer-Encoding: chunked\r\n\r\n 1\r\na\r\n0\r\n\r\n", 400, "hex digits"},
        {head + "Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n0\r\n\r\n", 400,
         "together"},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate Host"},
        {"GET / HTTP/0.99\r\nHost: a\r\n\r\n", 505, "not supported"},
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "not supported"},
    };
    for (const auto& c : cases) {
        INFO(c.bytes);
        check_refused(send_and_read(server.endpoint(), c.bytes), c.status, c.rule);
    }
    CHECK(send_and_read(server.endpoint(), kGet, 500ms).bytes.rfind("HTTP/1.1 200 ", 0) == 0);
    // Nothing of the refused increments reached the API.
    const auto counter = send_and_read(server.endpoint(), "GET /counter/a HTTP/1.0\r\n\r\n");
    CHECK(counter.bytes.find("\"value\":0") != std::string::npos);
}

TEST_CASE("Strict HTTP: a coding before chunked is 501 Not Implemented, as RFC 9112 6.1 and "
          "nginx answer, and nothing reaches the API",
          "[server_strict_http]")
{
    ServerProcess server({"-w", "1"}, 1);
    const std::string head = "POST /counter/a/increment HTTP/1.1\r\nHost: localhost\r\n";
    for (std::string coding : {"gzip", "identity"}) {
        const auto r = send_and_read(server.endpoint(), head + "Transfer-Encoding: " + coding +
                                                            ", chunked\r\n\r\n0\r\n\r\n");
        check_refused(r, 501, "Transfer-Encoding " + coding + " is not implemented");
        CHECK(r.bytes.find(" 501 Not Implemented\r\n") != std::string::npos);
    }
    // chunked not last: the body's length is unknown, a 400 (RFC 9112 6.3), where nginx says 501.
    check_refused(send_and_read(server.endpoint(),
                                head + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
                  400, "must end in chunked");
    const auto counter = send_and_read(server.endpoint(), "GET /counter/a HTTP/1.0\r\n\r\n");
    CHECK(counter.bytes.find("\"value\":0") != std::string::npos);
}

TEST_CASE("Strict HTTP: a raw UTF-8 byte in the target reaches the API, as nginx takes it",
          "[server_strict_http]")
{
    ServerProcess server({"-w", "1"}, 1);
    const auto key = send_and_read(
        server.endpoint(), "GET /counter/caf\xc3\xa9 HTTP/1.1\r\nHost: localhost\r\n\r\n", 500ms);
    INFO(key.bytes);
    CHECK(key.bytes.rfind("HTTP/1.1 400 ", 0) == 0);
    CHECK(key.bytes.find("the key may only contain") != std::string::npos); // the API's answer
    CHECK(!key.closed);                                                    // kept alive
    const auto page = send_and_read(server.endpoint(),
                                    "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: localhost\r\n\r\n", 500ms);
    INFO(page.bytes);
    CHECK(page.bytes.rfind("HTTP/1.1 404 ", 0) == 0);
    CHECK(page.bytes.find("no such path: /caf\xc3\xa9") != std::string::npos);
}

TEST_CASE("Strict HTTP: good requests before a bad one in a pipeline are answered first",
          "[server_strict_http]")
{
    ServerProcess server({"-w", "1"}, 1);
    const auto r = send_and_read(server.endpoint(),
                                 kGet + kGet + "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    INFO(r.bytes);
    CHECK(count(r.bytes, "HTTP/1.1 200 OK") == 2);
    const auto refusal = r.bytes.find("HTTP/1.1 400 Bad Request");
    REQUIRE(refusal != std::string::npos);
    CHECK(refusal > r.bytes.rfind("HTTP/1.1 200 OK"));
    CHECK(r.closed);
}

TEST_CASE("Strict HTTP: chunked bodies with trailers and HTTP/1.0 keep-alive reach the API",
          "[server_strict_http]")
{
    ServerProcess server({"-w", "1"}, 1);
    const std::string chunked =
        "POST /counter/c/increment HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n";
    const std::string keep_alive = "GET /counter/c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    const UniqueFd fd = connect_raw(server.endpoint());
    const std::string both = chunked + keep_alive;
    REQUIRE(::send(fd.get(), both.data(), both.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(both.size()));
    Reply r;
    REQUIRE(wait_until(
        [&] {
            auto more = read_reply(fd.get(), 50ms);
            r.bytes += more.bytes;
            return count(r.bytes, "\"value\":1") == 2 || more.closed;
        },
        5s));
    INFO(r.bytes);
    CHECK(count(r.bytes, " 200 OK") == 2);
    CHECK(count(r.bytes, "\"value\":1") == 2);
}

TEST_CASE("Strict HTTP: a slowloris client is closed by the header timeout with 408",
          "[server_strict_http]")
{
    ServerProcess server({"-w", "1", "--header-timeout", "0.5"}, 1);
    const UniqueFd fd = connect_raw(server.endpoint());
    const std::string head =
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + std::string(1000, 'a');
    Reply r;
    // One byte every 50 ms for up to 5 s: it never stops sending (an idle-read timeout would
    // never fire), yet the head must be complete within 0.5 s of the connection.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    for (std::size_t i = 0; i < head.size() && std::chrono::steady_clock::now() < deadline; ++i) {
        if (::send(fd.get(), &head[i], 1, MSG_NOSIGNAL) != 1) break;
        auto got = read_reply(fd.get(), 50ms);
        r.bytes += got.bytes;
        if (got.closed) {
            r.closed = true;
            break;
        }
    }
    if (!r.closed && !r.bytes.empty()) r.closed = read_reply(fd.get(), 1s).closed;
    check_refused(r, 408, "head did not arrive");
}

TEST_CASE("Strict HTTP: a stalled body is closed by the body timeout with 408",
          "[server_strict_http]")
{
    ServerProcess server({"-w", "1", "--body-timeout", "0.3", "--header-timeout", "30"}, 1);
    const auto r = send_and_read(
        server.endpoint(),
        "POST /counter/b/increment HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc");
    check_refused(r, 408, "body stalled");
}

TEST_CASE("Strict HTTP: an idle keep-alive connection is closed after the keep-alive timeout",
          "[server_strict_http]")
{
    ServerProcess server({"-w", "1", "--keepalive-timeout", "0.3"}, 1);
    const UniqueFd fd = connect_raw(server.endpoint());
    const std::string two = kGet;
    REQUIRE(::send(fd.get(), two.data(), two.size(), MSG_NOSIGNAL) > 0);
    Reply r = read_reply(fd.get(), 5s);
    INFO(r.bytes);
    CHECK(r.bytes.rfind("HTTP/1.1 200 OK", 0) == 0);
    CHECK(r.bytes.find("HTTP/1.1 408") == std::string::npos); // an idle close says nothing
    CHECK(r.closed);
}

TEST_CASE("Strict HTTP: keep-alive timeout 0 answers with Connection: close and closes",
          "[server_strict_http]")
{
    ServerProcess server({"-w", "1", "--keepalive-timeout", "0"}, 1);
    const auto r = send_and_read(server.endpoint(), kGet + kGet);
    INFO(r.bytes);
    CHECK(count(r.bytes, "HTTP/1.1 200 OK") == 1);
    CHECK(r.bytes.find("Connection: close") != std::string::npos);
    CHECK(r.closed);
}

TEST_CASE("Strict HTTP: keep-alive serves several requests within the timeout",
          "[server_strict_http]")
{
    ServerProcess server({"-w", "1", "--keepalive-timeout", "30"}, 1);
    const UniqueFd fd = connect_raw(server.endpoint());
    for (int i = 0; i < 3; ++i) {
        REQUIRE(::send(fd.get(), kGet.data(), kGet.size(), MSG_NOSIGNAL) > 0);
        Reply r;
        REQUIRE(wait_until(
            [&] {
                auto more = read_reply(fd.get(), 20ms);
                r.bytes += more.bytes;
                return r.bytes.find("{\"status\":\"ok\"}") != std::string::npos || more.closed;
            },
            5s));
        CHECK(!r.closed);
    }
}

TEST_CASE("Strict HTTP: every request of the corpus gets the status its file name gives",
          "[server_strict_http]")
{
    const char* dir = std::getenv("FORKLOCK_HTTP_CORPUS");
    REQUIRE(dir != nullptr);
    // The corpus names the server "h"; a loopback server answers only the names it is given.
    ServerProcess server({"-w", "1", "--allowed-hosts", "h"}, 1);
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string(); // "400-rule.txt"
        std::ifstream in(entry.path(), std::ios::binary);
        const std::string bytes{std::istreambuf_iterator<char>(in), {}};
        INFO(name);
        const auto r = send_and_read(server.endpoint(), bytes);
        CHECK(r.bytes.rfind("HTTP/1.1 " + name.substr(0, 3) + " ", 0) == 0);
        CHECK(r.closed);
        ++files;
    }
    CHECK(files >= 60);
}
