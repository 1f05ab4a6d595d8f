// The HTTP surface of the real binary: spreading across workers, and bad input of every kind
// answered with a 4xx while the server keeps serving.

#include <catch2/catch.hpp>

#include <set>

#include "server_process.h"

using namespace test;

namespace {

struct Served {
    TempDir dir;
    ServerProcess server;
    explicit Served(const std::string& tag, std::vector<std::string> args = {"-w", "2"}, int workers = 2)
        : dir(tag), server(std::move(args), dir, workers)
    {
    }
    HttpResponse raw(const std::string& bytes) { return parse_response(exchange_raw(server.port, bytes, 5s)); }
};

void check_json_error(HttpResponse r, int status)
{
    CHECK(r.status == status);
    CHECK(r.headers["content-type"] == "application/json");
    CHECK(r.json().contains("error"));
}

} // namespace

TEST_CASE("Server: 16 concurrent requests are answered by several workers", "[server][http]")
{
    Served s("spread", {"-w", "4"}, 4);
    std::set<int> pids;
    for (const auto& r : concurrent_increments(s.server.port, "spread", 16, 100))
        if (r.status == 200) pids.insert(r.json()["pid"].get<int>());
    CHECK(pids.size() >= 3);
}

TEST_CASE("Server: bad keys, parameters, paths and methods get JSON 4xx", "[server][http]")
{
    Served s("bad");
    auto port = s.server.port;
    check_json_error(request(port, "POST", "/counter/.hidden/increment"), 400);
    check_json_error(request(port, "POST", "/counter/%2e%2e/increment"), 400);
    check_json_error(request(port, "GET", "/counter/..%2F..%2Fetc%2Fpasswd"), 400);
    check_json_error(request(port, "GET", "/counter/" + std::string(129, 'k')), 400);
    check_json_error(request(port, "POST", "/counter/k/increment?hold_ms=60001"), 400);
    check_json_error(request(port, "POST", "/counter/k/increment?timeout_ms=abc"), 400);
    check_json_error(request(port, "GET", "/counter/../../etc/passwd"), 404);
    check_json_error(request(port, "GET", "/nope"), 404);
    auto r = request(port, "GET", "/counter/k/increment");
    check_json_error(r, 405);
    CHECK(r.headers["allow"] == "POST");
    check_json_error(request(port, "PATCH", "/counter/k"), 405);
    check_json_error(request(port, "OPTIONS", "/healthz"), 405);
    CHECK(request(port, "GET", "/healthz").status == 200);
}

TEST_CASE("Server: oversized headers, targets and bodies get 4xx and the server keeps serving", "[server][http]")
{
    Served s("big");
    auto workers = s.server.worker_pids();
    std::string big_header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(10000, 'a') + "\r\nConnection: close\r\n\r\n";
    check_json_error(s.raw(big_header), 431);
    std::string long_target = "GET /counter/" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    check_json_error(s.raw(long_target), 414);
    std::string body = "POST /counter/k/increment HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 70000\r\n\r\n" + std::string(70000, 'b');
    check_json_error(s.raw(body), 413);
    // Past evhttp's own limits, libevent answers before any handler runs (not in JSON).
    std::string huge_header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: " + std::string(100000, 'a') + "\r\n\r\n";
    auto r = s.raw(huge_header);
    CHECK((r.status == 0 || (r.status >= 400 && r.status < 500)));
    std::string huge_body = "POST /counter/k/increment HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n";
    r = s.raw(huge_body);
    CHECK(r.status == 413);
    CHECK(request(s.server.port, "GET", "/healthz").status == 200);
    CHECK(s.server.worker_pids() == workers);
}

TEST_CASE("Server: garbage on the socket is refused without hurting the server", "[server][http]")
{
    Served s("garbage");
    auto workers = s.server.worker_pids();
    for (std::string junk : {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), std::string("HELLO\r\n\r\n"),
                             std::string("GET\r\n\r\n"), std::string("BREW /pot HTTP/1.1\r\n\r\n"),
                             std::string("GET / HTTP/9.9\r\n\r\n"), std::string("GET / HTTP/1.1\r\nNoColon\r\n\r\n"),
                             std::string(3000, '\0')}) {
        // Junk without a line end leaves evhttp waiting for more: don't wait for its idle timeout.
        bool has_line = junk.find("\r\n\r\n") != std::string::npos;
        auto r = parse_response(exchange_raw(s.server.port, junk, has_line ? 5000ms : 300ms));
        INFO(junk.substr(0, std::min(junk.find_first_of(std::string("\r\0", 2)), std::size_t{12})) << " -> " << r.status);
        CHECK((r.status == 0 || (r.status >= 400 && r.status < 600)));
    }
    // A client that connects and says nothing must not stop the others.
    int idle = connect_to(s.server.port);
    CHECK(request(s.server.port, "GET", "/healthz").status == 200);
    ::close(idle);
    CHECK(request(s.server.port, "POST", "/counter/k/increment").json()["value"] == 1);
    CHECK(s.server.worker_pids() == workers);
}

TEST_CASE("Server: invalid command lines exit 2 before listening", "[server][http]")
{
    for (std::vector<std::string> args : {std::vector<std::string>{"--lock-mode", "spin"}, {"-w", "0"}, {"--bogus"},
                                          {"--log-level", "loud"}, {"-t", "x"}, {"-b", "1.2.3.4:99999"},
                                          {"--access-logfile", "/nonexistent/dir/log"}}) {
        auto e = run_to_exit(args);
        INFO(e.out);
        CHECK(e.code == 2);
        CHECK(e.out.find("Listening") == std::string::npos);
        CHECK_FALSE(e.out.empty());
    }
    auto help = run_to_exit({"--help"});
    CHECK(help.code == 0);
    CHECK(help.out.find("--max-requests-jitter") != std::string::npos);
    CHECK(run_to_exit({"--version"}).out.find("forklock 0.1.0") != std::string::npos);
}

TEST_CASE("Server: binds IPv6 loopback when asked", "[server][http]")
{
    auto dir = temp_dir("v6");
    try {
        ServerProcess server({"-b", "[::1]:0"}, dir, 1);
        CHECK(server.log().find("Listening at: http://[::1]:") != std::string::npos);
    } catch (const std::runtime_error& e) {
        // Hosts without IPv6 fail to bind: that must be a clear error, not a crash.
        CHECK(std::string(e.what()).find("bind") != std::string::npos);
    }
}
