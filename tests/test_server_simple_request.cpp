// The simple requests a worker answers without evhttp (http_adapter.h, "Simple requests"): the
// same bytes as evhttp's answers, keep-alive kept, and answers that wait for a client that reads
// slowly leave the connection's order intact.

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "harness/raw_exchange.h"
#include "harness/server_process.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

void send_all(int fd, std::string_view bytes)
{
    while (!bytes.empty()) {
        const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        REQUIRE(sent > 0);
        bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
}

// One request on `fd`, its response (Date's value blanked, it may tick between two answers).
std::string exchange(int fd, const std::string& request)
{
    send_all(fd, request);
    std::string buffer;
    std::string response = next_response(fd, buffer, Clock::now() + 5s);
    CHECK(buffer.empty());
    if (const std::size_t date = response.find("\r\nDate: "); date != std::string::npos)
        response.replace(date + 8, response.find("\r\n", date + 2) - date - 8, "(date)");
    return response;
}

// An increment's answer without what differs between two increments: the value, the times (their
// digits vary, so the length does too) and the Content-Length that follows from them.
std::string without_figures(std::string response)
{
    static const std::regex figures(
        R"(("value"|"waited_ms"|"held_ms"|"token"):[0-9.e+-]+|Content-Length: [0-9]+)");
    return std::regex_replace(response, figures, "$1(figure)");
}

// A connection to 127.0.0.1:port whose receive window is set small before the handshake, so the
// server's socket fills soon and its sends fall short.
forklock::UniqueFd connect_small_window(std::uint16_t port)
{
    forklock::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    const int small = 4096;
    REQUIRE(::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0);
    return fd;
}

// The bytes sent on `fd` that its peer's kernel has not acknowledged yet.
int unacknowledged(int fd)
{
    int bytes = -1;
    REQUIRE(::ioctl(fd, SIOCOUTQ, &bytes) == 0);
    return bytes;
}

std::string get(const std::string& target, const std::string& fields = "",
                const std::string& method = "GET")
{
    return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + "\r\n";
}

} // namespace

TEST_CASE("Server: a simple request is answered with the bytes evhttp writes for it",
          "[server][simple_request]")
{
    ServerProcess server({"-w", "1"}, 1);
    const forklock::UniqueFd fd = connect_raw(server.endpoint());
    // "Connection: keep-alive" changes nothing in HTTP/1.1 but sends the request through evhttp.
    for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/healthz"},
             {"GET", "/nope"},
             {"GET", "/counter/a"},
             {"GET", "/counter/a/increment"},
             {"GET", "/"},
             {"GET", "/dashboard"},
             {"DELETE", "/counter/a"},
             {"PUT", "/counter/a"},
             {"POST", "/counter/a/increment?hold_ms=nope"}}) {
        INFO(method << " " << target);
        const std::string simple = exchange(fd.get(), get(target, "", method));
        const std::string parsed =
            exchange(fd.get(), get(target, "Connection: keep-alive\r\n", method));
        CHECK(simple.starts_with("HTTP/1.1 "));
        CHECK(simple == parsed);
    }
    // An increment, each way: the same answer but for the value.
    const std::string first = exchange(fd.get(), get("/counter/b/increment", "", "POST"));
    const std::string second =
        exchange(fd.get(), get("/counter/b/increment", "Connection: keep-alive\r\n", "POST"));
    CHECK(first.find("\"value\":1") != std::string::npos);
    CHECK(second.find("\"value\":2") != std::string::npos);
    CHECK(without_figures(first) == without_figures(second));
}

TEST_CASE("Server: a simple request's Host, Origin and Sec-Fetch-Site reach the site checks",
          "[server][simple_request]")
{
    // The fast path parses its own fields: each refusal of site_guard.h, and the control's
    // refusal without a token, comes out the same as through evhttp.
    ServerProcess server({"-w", "1", "--dashboard-token", "t0k3n"}, 1);
    const forklock::UniqueFd fd = connect_raw(server.endpoint());
    const std::string here = "Host: 127.0.0.1\r\n";
    for (const auto& [request, status] : std::vector<std::pair<std::string, std::string>>{
             {"GET /healthz HTTP/1.1\r\nHost: localhost:1\r\n", "200"},
             {"GET /healthz HTTP/1.1\r\nHost: attacker.example\r\n", "403"},
             {"POST /counter/a/increment HTTP/1.1\r\n" + here + "Origin: http://evil.example\r\n",
              "403"},
             {"POST /counter/a/increment HTTP/1.1\r\n" + here + "Sec-Fetch-Site: cross-site\r\n",
              "403"},
             {"POST /control/kill?token=t0k3n HTTP/1.1\r\n" + here, "403"},
         }) {
        INFO(request);
        const std::string simple = exchange(fd.get(), request + "\r\n");
        CHECK(simple == exchange(fd.get(), request + "Connection: keep-alive\r\n\r\n"));
        CHECK(simple.starts_with("HTTP/1.1 " + status + " "));
    }
}

TEST_CASE("Server: a client that reads nothing until the end gets every answer whole and in order",
          "[server][simple_request]")
{
    ServerProcess server({"-w", "1"}, 1);
    const forklock::UniqueFd fd = connect_small_window(server.endpoint().port);
    // Simple GETs one at a time (each acknowledged before the next, so each comes in a read of
    // its own) until the server's socket is full and an answer only partly fits; then one that
    // evhttp parses, and more simple ones: those wait behind the unsent rest, in the same order.
    constexpr int kSimple = 1000, kAfter = 6; // 5 MB of answers: more than the buffers hold
    const int total = kSimple + 1 + kAfter;
    for (int i = 0; i < total; ++i) {
        const bool parsed = i == kSimple;
        send_all(fd.get(), get(parsed ? "/healthz" : "/dashboard",
                               parsed ? "Connection: keep-alive\r\n" : ""));
        CHECK(wait_until([&] { return unacknowledged(fd.get()) == 0; }, 5s));
    }
    std::string buffer;
    const auto deadline = Clock::now() + 20s;
    for (int i = 0; i < total; ++i) {
        INFO("response " << i);
        const std::string response = next_response(fd.get(), buffer, deadline);
        REQUIRE(response.starts_with("HTTP/1.1 200 OK\r\n"));
        CHECK((response.find("\"status\":\"ok\"") != std::string::npos) == (i == kSimple));
    }
    CHECK(buffer.empty());
}

TEST_CASE("Server: a request half sent behind a slow client's answers is served once they are read",
          "[server][simple_request]")
{
    ServerProcess server({"-w", "1"}, 1);
    const forklock::UniqueFd fd = connect_small_window(server.endpoint().port);
    constexpr int kSimple = 1000; // until an answer only partly fits, as above
    for (int i = 0; i < kSimple; ++i) {
        send_all(fd.get(), get("/dashboard"));
        CHECK(wait_until([&] { return unacknowledged(fd.get()) == 0; }, 5s));
    }
    // The head of a request, which evhttp starts parsing while the last answer still waits...
    send_all(fd.get(), "GET /healthz HTTP/1.1\r\n");
    CHECK(wait_until([&] { return unacknowledged(fd.get()) == 0; }, 5s));
    std::string buffer;
    const auto deadline = Clock::now() + 20s;
    for (int i = 0; i < kSimple; ++i) { // ...and that answer goes out to the end
        INFO("response " << i);
        REQUIRE(next_response(fd.get(), buffer, deadline).starts_with("HTTP/1.1 200 OK\r\n"));
    }
    send_all(fd.get(), "Host: 127.0.0.1\r\n\r\n");
    const std::string last = next_response(fd.get(), buffer, deadline);
    CHECK(last.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(last.find("\"status\":\"ok\"") != std::string::npos);
}
