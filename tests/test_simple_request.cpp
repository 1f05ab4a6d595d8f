// parse_simple_request and format_response: which requests may skip evhttp, and the bytes evhttp
// 2.1 would have written for their answers.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "simple_request.h"

using forklock::format_response;
using forklock::parse_simple_request;
using forklock::ResponseParts;

namespace {

std::string with_fields(std::string request_line, const std::string& fields)
{
    return request_line + "\r\nHost: 127.0.0.1:8000\r\n" + fields + "\r\n";
}

} // namespace

TEST_CASE("SimpleRequest: a plain GET splits into path and query", "[simple_request]")
{
    const std::string raw = with_fields("GET /counter/a%20b?hold_ms=3&x=? HTTP/1.1",
                                        "User-Agent: curl/7.88\r\nAccept: */*\r\n");
    const auto get = parse_simple_request(raw);
    REQUIRE(get);
    CHECK(get->path == "/counter/a%20b");
    CHECK(get->query == "hold_ms=3&x=?");
    CHECK(get->bytes == raw.size());

    const std::string bare_raw = with_fields("GET /healthz HTTP/1.1", ""); // the views point here
    const auto bare = parse_simple_request(bare_raw);
    REQUIRE(bare);
    CHECK(bare->path == "/healthz");
    CHECK(bare->query.empty());
}

TEST_CASE("SimpleRequest: a bodyless POST, DELETE or PUT is as simple as a GET", "[simple_request]")
{
    for (const std::string method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"}) {
        const std::string raw =
            with_fields(method + " /counter/a/increment?hold_ms=1 HTTP/1.1", "");
        const auto r = parse_simple_request(raw);
        REQUIRE(r);
        CHECK(r->method == method);
        CHECK(r->path == "/counter/a/increment");
        CHECK(r->query == "hold_ms=1");
    }
}

TEST_CASE("SimpleRequest: other methods, versions and targets are left to evhttp",
          "[simple_request]")
{
    for (const char* line :
         {"HEAD /healthz HTTP/1.1", "CONNECT /healthz HTTP/1.1", "FOO /healthz HTTP/1.1",
          "get /healthz HTTP/1.1", "GET", "GET /healthz", "GET /healthz HTTP/1.1 x",
          "GET /healthz HTTP/1.0", "GET http://h/healthz HTTP/1.1", "GET //h/healthz HTTP/1.1",
          "GET /healthz#top HTTP/1.1", "GET * HTTP/1.1", "GET  /healthz HTTP/1.1"}) {
        INFO(line);
        CHECK_FALSE(parse_simple_request(with_fields(line, "")));
    }
}

TEST_CASE("SimpleRequest: the fields that change evhttp's framing or answer are left to it",
          "[simple_request]")
{
    for (const char* field :
         {"Connection: keep-alive", "connection: close", "Keep-Alive: 5", "Proxy-Connection: x",
          "Content-Length: 0", "Transfer-Encoding: chunked", "Expect: 100-continue", "Upgrade: h2c",
          "TE: trailers", "X-Forklock-Token: secret"}) {
        INFO(field);
        CHECK_FALSE(parse_simple_request(
            with_fields("GET /healthz HTTP/1.1", field + std::string("\r\n"))));
    }
    CHECK(parse_simple_request(with_fields("GET /healthz HTTP/1.1", "X-Connection: close\r\n")));
}

TEST_CASE("SimpleRequest: only exactly one whole request qualifies", "[simple_request]")
{
    const std::string one = with_fields("GET /healthz HTTP/1.1", "");
    CHECK_FALSE(parse_simple_request(one.substr(0, one.size() - 2))); // no end of head
    CHECK_FALSE(parse_simple_request(one + one));                     // pipelined
    CHECK_FALSE(parse_simple_request(one + "x"));                     // a body
}

TEST_CASE("SimpleRequest: format_response writes evhttp's status line and header order",
          "[simple_request]")
{
    const std::vector<std::pair<std::string, std::string>> extra = {{"Allow", "GET, POST"}};
    std::string out = "left over";
    out.clear();
    format_response({405, "Method Not Allowed", "application/json", &extra, "{}\n",
                     "Tue, 01 Dec 2026 20:06:16 GMT"},
                    out);
    CHECK(out == "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\n"
                 "Allow: GET, POST\r\nDate: Tue, 01 Dec 2026 20:06:16 GMT\r\n"
                 "Content-Length: 3\r\n\r\n{}\n");
}

TEST_CASE("SimpleRequest: a 204 or 304 answer has no Content-Length", "[simple_request]")
{
    for (int status : {204, 304}) {
        std::string out;
        format_response({status, "X", "text/plain", nullptr, "", "D"}, out);
        CHECK(out == "HTTP/1.1 " + std::to_string(status) +
                         " X\r\nContent-Type: text/plain\r\nDate: D\r\n\r\n");
    }
}

TEST_CASE("SimpleRequest: Host, Origin and Sec-Fetch-Site are kept for the site checks, trimmed",
          "[simple_request]")
{
    const std::string raw = with_fields("POST /counter/a/increment HTTP/1.1",
                                        "origin:  http://evil.example \r\n"
                                        "Sec-Fetch-Site: cross-site\r\nOrigin: http://second\r\n");
    const auto post = parse_simple_request(raw);
    REQUIRE(post);
    CHECK(post->host == "127.0.0.1:8000");
    CHECK(post->origin == "http://evil.example"); // the first, as evhttp_find_header takes
    CHECK(post->fetch_site == "cross-site");

    const std::string bare_raw = with_fields("POST /counter/a/increment HTTP/1.1", "");
    const auto bare = parse_simple_request(bare_raw);
    REQUIRE(bare);
    CHECK_FALSE(bare->origin);
    CHECK(bare->fetch_site.empty());
}
