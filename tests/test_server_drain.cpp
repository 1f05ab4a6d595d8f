// A stopping worker (TERM, HUP) answers every connection it accepted: a request that comes after
// the stop began is answered with Connection: close, an idle keep-alive connection is closed at
// once, and under load a HUP fails no request.

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>

#include <string>

#include <fmt/format.h>

#include "app/counter_store.h"
#include "harness/http_client.h"
#include "harness/increment_load.h"
#include "harness/raw_exchange.h"
#include "harness/server_process.h"
#include "harness/wait.h"

using namespace forklock;
using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kIncrement =
    "POST /counter/k/increment HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n";

// One request on a keep-alive raw connection, its response ("" when the connection closed).
std::string exchange(int fd, std::string_view request, std::string& buffer)
{
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size()))
        return "";
    return next_response(fd, buffer, std::chrono::steady_clock::now() + 10s);
}

// The sum of forklock_http_connections in a /metrics response.
int open_connections(const std::string& metrics)
{
    int total = 0;
    for (std::size_t at = 0;
         (at = metrics.find("forklock_http_connections{", at)) != std::string::npos;) {
        at = metrics.find("} ", at);
        total += std::atoi(metrics.c_str() + at + 2);
    }
    return total;
}

// The stop signal `sig` reaches the only worker while it holds `fresh`, a connection it accepted
// on which nothing was sent yet (`warm`: one request was answered on it, it is an idle keep-alive
// connection). Its request, sent once the worker said it stops, must be answered, with
// Connection: close.
void connection_is_answered(int sig, bool warm)
{
    ServerProcess server({"-w", "1"}, 1);
    UniqueFd fresh = connect_raw(server.endpoint());
    std::string in;
    if (warm) REQUIRE(exchange(fresh.get(), kIncrement, in).starts_with("HTTP/1.1 200"));
    REQUIRE(wait_until(
        [&] { // fresh and the /metrics request itself
            return open_connections(http_request(server.endpoint(), "GET", "/metrics").body) >= 2;
        },
        10s, 10ms));
    server.signal(sig);
    REQUIRE(server.wait_for_log("Worker stopping (pid:", 10s));
    const std::string answer = exchange(fresh.get(), kIncrement, in);
    CHECK(answer.starts_with("HTTP/1.1 200"));
    CHECK(answer.find("Connection: close") != std::string::npos);
}

} // namespace

TEST_CASE("Drain: after HUP, a request on a connection the old worker accepted before is answered",
          "[server][drain]")
{
    connection_is_answered(SIGHUP, false);
}

TEST_CASE("Drain: after HUP, a request on an idle keep-alive connection of the old worker is "
          "answered",
          "[server][drain]")
{
    connection_is_answered(SIGHUP, true);
}

TEST_CASE("Drain: after TERM, a request on a connection the worker accepted before is answered",
          "[server][drain]")
{
    connection_is_answered(SIGTERM, false);
}

TEST_CASE("Drain: HUP closes an idle keep-alive connection after a short grace, not after "
          "--keepalive-timeout",
          "[server][drain]")
{
    ServerProcess server({"-w", "1", "--keepalive-timeout", "60"}, 1);
    UniqueFd idle = connect_raw(server.endpoint());
    std::string in;
    REQUIRE(exchange(idle.get(), kIncrement, in).starts_with("HTTP/1.1 200"));
    const auto old = server.worker_pids();
    server.signal(SIGHUP);
    const auto started = std::chrono::steady_clock::now();
    char byte;
    CHECK(::recv(idle.get(), &byte, 1, 0) == 0); // EOF: closed, not reset, nothing sent
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    for (pid_t pid : old) CHECK(wait_until([&] { return ::kill(pid, 0) != 0; }, 10s));
}

TEST_CASE("Drain: ten HUPs under load fail no request on a fresh connection and lose no "
          "increment",
          "[server][drain]")
{
    ServerProcess server({"-w", "2", "--lock-mode", "flock"}, 2);
    IncrementLoad load(server.endpoint(), "up");
    for (int i = 1; i <= 10; ++i) {
        server.signal(SIGHUP);
        REQUIRE(server.wait_for_log(fmt::format("Hang up: Master"), 10s));
        REQUIRE(
            wait_until([&] { return server.count_in_log("Booting worker") >= 2 + 2 * i; }, 20s));
        const auto before = load.acked();
        REQUIRE(wait_until([&] { return load.acked() >= before + 10; }, 20s));
    }
    const auto failures = load.finish();
    CHECK(failures.empty());
    for (const auto& f : failures) UNSCOPED_INFO(f);
    auto value = http_request(server.endpoint(), "GET", "/counter/up").json()["value"];
    CHECK(value.get<std::uint64_t>() == load.acked());
}

TEST_CASE("Drain: TERM under load: every increment the server made was answered, and no request "
          "failed before the TERM",
          "[server][drain]")
{
    ServerProcess server({"-w", "2", "--lock-mode", "flock"}, 2);
    IncrementLoad load(server.endpoint(), "up");
    REQUIRE(wait_until([&] { return load.acked() >= 50; }, 20s));
    load.stop_judging(); // what fails from now on may be the server going away
    server.signal(SIGTERM);
    REQUIRE(server.wait_exit(30s) == 0);
    const auto failures = load.finish();
    CHECK(failures.empty());
    for (const auto& f : failures) UNSCOPED_INFO(f);
    // Connections still in the kernel's queue when the socket closed are reset: they never
    // reached a worker. An increment a worker made was answered.
    CHECK(forklock::CounterStore(server.dir() / "data").read("up") == load.acked());
}
