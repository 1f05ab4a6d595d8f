// RequestScreen: every rule with the raw bytes that break it, and the valid requests it must let
// through (pipelined, chunked with trailers, HTTP/1.0 keep-alive), fed whole and byte by byte.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "request_screen.h"

using forklock::RequestScreen;
using Kind = RequestScreen::Verdict::Kind;

namespace {

// Feeds `bytes` in pieces of `piece` bytes; returns the last verdict (the first reject, if any),
// with `passed` counted over the whole input.
RequestScreen::Verdict feed(RequestScreen& s, const std::string& bytes, std::size_t piece)
{
    RequestScreen::Verdict last;
    std::size_t passed = 0;
    for (std::size_t at = 0; at < bytes.size(); at += piece) {
        last = s.feed(std::string_view(bytes).substr(at, piece));
        passed += last.passed;
        if (last.kind == Kind::reject) break;
    }
    last.passed = passed;
    return last;
}

RequestScreen::Verdict screen(const std::string& bytes, std::size_t piece = 1 << 20)
{
    RequestScreen s;
    return feed(s, bytes, piece);
}

const std::string kGet = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

struct Bad {
    const char* rule;
    std::string bytes;
    int status = 400;
};

std::vector<Bad> bad_requests()
{
    const std::string head = "POST /keys/a/increment HTTP/1.1\r\nHost: h\r\n";
    const std::string chunked = head + "Transfer-Encoding: chunked\r\n\r\n";
    return {
        {"duplicate Content-Length", head + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
        {"duplicate Content-Length, same value",
         head + "Content-Length: 1\r\nContent-Length: 1\r\n\r\na"},
        {"list-form Content-Length", head + "Content-Length: 1, 1\r\n\r\na"},
        {"signed Content-Length", head + "Content-Length: -0\r\n\r\n"},
        {"plus Content-Length", head + "Content-Length: +1\r\n\r\na"},
        {"hex Content-Length", head + "Content-Length: 0x1\r\n\r\na"},
        {"empty Content-Length", head + "Content-Length: \r\n\r\n"},
        {"Content-Length overflow", head + "Content-Length: 99999999999999999999999\r\n\r\n"},
        {"space before colon", head + "Content-Length : 1\r\n\r\na"},
        {"tab before colon", head + "Content-Length\t: 1\r\n\r\na"},
        {"non-token byte in a field name", head + "X(y): 1\r\n\r\n"},
        {"high byte in a field name", head + "X\xc3\xa9: 1\r\n\r\n"},
        {"empty field name", head + ": 1\r\n\r\n"},
        {"field line without colon", head + "Foo\r\n\r\n"},
        {"NUL in a value", head + std::string("X: a\0b\r\n\r\n", 10)},
        {"escape in a value", head + "X: a\x1b[0m\r\n\r\n"},
        {"DEL in a value", head + "X: a\x7f\r\n\r\n"},
        {"Transfer-Encoding with Content-Length",
         head + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding in HTTP/1.0",
         "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding gzip", head + "Transfer-Encoding: gzip\r\n\r\n"},
        {"Transfer-Encoding gzip before chunked: not implemented",
         head + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
        {"Transfer-Encoding identity before chunked: not implemented",
         head + "Transfer-Encoding: identity , chunked\r\n\r\n0\r\n\r\n", 501},
        {"Transfer-Encoding not ending in chunked",
         head + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding identity", head + "Transfer-Encoding: identity\r\n\r\n"},
        {"Transfer-Encoding chunked twice in a list",
         head + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding with an empty coding",
         head + "Transfer-Encoding: gzip,,chunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding with a parameter",
         head + "Transfer-Encoding: gzip;q=1, chunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding chunked twice",
         head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding with a suffix", head + "Transfer-Encoding: chunkedx\r\n\r\n"},
        {"chunk size with a leading space", chunked + " 1\r\na\r\n0\r\n\r\n"},
        {"chunk size with a trailing space", chunked + "1 \r\na\r\n0\r\n\r\n"},
        {"chunk size with a tab", chunked + "1\t\r\na\r\n0\r\n\r\n"},
        {"chunk size with a sign", chunked + "+1\r\na\r\n0\r\n\r\n"},
        {"chunk size with an underscore", chunked + "1_0\r\n" + std::string(16, 'a') + "\r\n"},
        {"chunk size 0x", chunked + "0x1\r\na\r\n0\r\n\r\n"},
        {"empty chunk size", chunked + "\r\na\r\n0\r\n\r\n"},
        {"chunk size overflow", chunked + "10000000000000000\r\na\r\n"},
        {"chunk extension without name", chunked + "1;\r\na\r\n0\r\n\r\n"},
        {"chunk extension with = and no value", chunked + "1;a=\r\na\r\n0\r\n\r\n"},
        {"chunk extension with a space", chunked + "1; a=b\r\na\r\n0\r\n\r\n"},
        {"chunk extension unterminated quote", chunked + "1;a=\"b\r\na\r\n0\r\n\r\n"},
        {"chunk extension with a control byte", chunked + "1;a\x01\r\na\r\n0\r\n\r\n"},
        {"chunk data longer than its size", chunked + "1\r\nab\r\n0\r\n\r\n"},
        {"chunk line ending in bare LF", chunked + "1\na\r\n0\r\n\r\n"},
        {"chunk data ending in bare LF", chunked + "1\r\na\n0\r\n\r\n"},
        {"chunk line ending in bare CR", chunked + "1\rxa\r\n0\r\n\r\n"},
        {"Content-Length in a trailer", chunked + "0\r\nContent-Length: 5\r\n\r\n"},
        {"obs-fold in a trailer", chunked + "0\r\nX: a\r\n b\r\n\r\n"},
        {"duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
        {"malformed Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
        {"Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"},
        {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n"},
        {"obs-fold", head + "X: a\r\n b\r\n\r\n"},
        {"obs-fold with a tab", head + "X: a\r\n\tb\r\n\r\n"},
        {"whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n"},
        {"bare LF after the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n"},
        {"bare LF after a field", "GET / HTTP/1.1\r\nHost: a\n\r\n"},
        {"bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\r\n\n"},
        {"bare CR in the request line", "GET / HTTP/1.1\rHost: a\r\n\r\n"},
        {"bare CR in a field", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"},
        {"empty line before the request line", "\r\n" + kGet},
        {"no method", " / HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"two spaces after the method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"non-token method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"control byte in the target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"DEL in the target", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"high byte in the version", "GET / HTTP/1.\xb9\r\nHost: a\r\n\r\n"},
        {"no version", "GET /\r\nHost: a\r\n\r\n"},
        {"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n"},
        {"version without minor", "GET / HTTP/1\r\nHost: a\r\n\r\n"},
        {"space after the version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n"},
        {"HTTP/0.99", "GET / HTTP/0.99\r\nHost: a\r\n\r\n", 505},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
        {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
        {"HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
    };
}

} // namespace

TEST_CASE("RequestScreen: every rule rejects its bytes, fed whole or byte by byte",
          "[request_screen]")
{
    for (const auto& bad : bad_requests()) {
        for (std::size_t piece : {std::size_t{1} << 20, std::size_t{1}, std::size_t{7}}) {
            INFO(bad.rule << " (pieces of " << piece << ")");
            const auto v = screen(bad.bytes, piece);
            CHECK(v.kind == Kind::reject);
            CHECK(v.status == bad.status);
            CHECK(!v.message.empty());
            CHECK(v.passed < bad.bytes.size());
        }
    }
}

TEST_CASE("RequestScreen: a rejection names the rule", "[request_screen]")
{
    CHECK(screen("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").message == "duplicate Host");
    CHECK(screen("GET / HTTP/1.1\r\nHost : a\r\n\r\n").message.find("colon") != std::string::npos);
    CHECK(screen("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n").message.find("obs-fold") == 0);
}

TEST_CASE("RequestScreen: a rejection passes only the bytes before the offending one",
          "[request_screen]")
{
    const std::string bad = "GET / HTTP/1.1\r\nHost : a\r\n\r\n";
    const auto v = screen(kGet + bad);
    REQUIRE(v.kind == Kind::reject);
    CHECK(v.passed == kGet.size() + bad.find(" :"));
}

TEST_CASE("RequestScreen: after a rejection every feed rejects and passes nothing",
          "[request_screen]")
{
    RequestScreen s;
    REQUIRE(s.feed("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").kind == Kind::reject);
    const auto v = s.feed(kGet);
    CHECK(v.kind == Kind::reject);
    CHECK(v.passed == 0);
    CHECK(s.rejected());
}

TEST_CASE("RequestScreen: valid requests pass whole and byte by byte", "[request_screen]")
{
    const std::vector<std::string> good = {
        kGet,
        "GET /keys/a?hold_ms=1 HTTP/1.1\r\nhost: 127.0.0.1:8000\r\nUser-Agent: x/1 (y; z)\r\n"
        "Accept: */*\r\nX-Empty:\r\nX-Tab:\tv\t\r\nX-High: caf\xc3\xa9\r\n\r\n",
        "POST /keys/a/increment HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
        "POST /keys/a/increment HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
        "5\r\nhello\r\nA;name=value;flag;q=\"a \\\"b\\\" c\"\r\n0123456789\r\n0\r\n"
        "X-Checksum: 1\r\nX-Other: 2\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
        "chunked\r\n\r\n00000001\r\na\r\n0\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http://h/x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
        "GET /counter/caf\xc3\xa9?q=\xe2\x82\xac HTTP/1.1\r\nHost: h\r\n\r\n", // raw UTF-8
        "GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n", // any high byte, as nginx
    };
    for (const auto& request : good) {
        for (std::size_t piece : {std::size_t{1} << 20, std::size_t{1}, std::size_t{3}}) {
            INFO(request << " (pieces of " << piece << ")");
            RequestScreen s;
            const auto v = feed(s, request, piece);
            CHECK(v.kind == Kind::ok);
            CHECK(v.passed == request.size());
            CHECK(s.requests_completed() == 1);
            CHECK(s.phase() == RequestScreen::Phase::idle);
        }
    }
}

TEST_CASE("RequestScreen: pipelined requests of every framing are followed one after another",
          "[request_screen]")
{
    const std::string stream = kGet +
                               "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" +
                               "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
                               "chunked\r\n\r\n3\r\nxyz\r\n0\r\nT: 1\r\n\r\n" +
                               "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + kGet;
    for (std::size_t piece : {std::size_t{1} << 20, std::size_t{1}, std::size_t{5}}) {
        RequestScreen s;
        const auto v = feed(s, stream, piece);
        CHECK(v.kind == Kind::ok);
        CHECK(s.requests_completed() == 5);
        CHECK(s.requests_begun() == 5);
    }
}

TEST_CASE("RequestScreen: a bad request after good ones is still caught", "[request_screen]")
{
    // A body that looks like a request is a body: only framing decides where requests start.
    const std::string smuggled = "GET /x HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n";
    const std::string body_hides_it =
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(smuggled.size()) +
        "\r\n\r\n" + smuggled;
    CHECK(screen(body_hides_it).kind == Kind::ok);
    CHECK(screen(body_hides_it + smuggled).kind == Kind::reject);
}

TEST_CASE("RequestScreen: the phase follows head, body and idle", "[request_screen]")
{
    RequestScreen s;
    CHECK(s.phase() == RequestScreen::Phase::idle);
    s.feed("POST / HTTP/1.1\r\nHost: h\r\n");
    CHECK(s.phase() == RequestScreen::Phase::head);
    s.feed("Content-Length: 4\r\n\r\nab");
    CHECK(s.phase() == RequestScreen::Phase::body);
    CHECK(s.feed("cd").kind == Kind::ok);
    CHECK(s.phase() == RequestScreen::Phase::idle);
    s.feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
    CHECK(s.phase() == RequestScreen::Phase::body); // trailers
    CHECK(s.requests_begun() == 2);
    CHECK(s.feed("\r\n").kind == Kind::ok);
    CHECK(s.requests_completed() == 2);
}

TEST_CASE("RequestScreen: request_bytes counts the current request only", "[request_screen]")
{
    RequestScreen s;
    s.feed(kGet + "GET / HT");
    CHECK(s.request_bytes() == 8);
    const auto v = s.feed("TP/1.1\r\nHost : a\r\n");
    REQUIRE(v.kind == Kind::reject);
    CHECK(s.request_bytes() == std::string("GET / HTTP/1.1\r\nHost").size());
}
