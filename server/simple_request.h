#pragma once
// The simple request: what forklock answers without evhttp, because it is what a load balancer's
// health check, a dashboard's poll or a client's increment sends thousands of times a second, and
// evhttp spends on it more than the whole rest of the exchange (http_adapter.h, "Simple
// requests").
//
// parse_simple_request: whether `request`, the bytes of exactly one complete request that a
// RequestScreen has passed (so already well framed: CRLF lines, token names, a Host), is in
// HTTP/1.1, without a body, with a method evhttp knows but HEAD and CONNECT (GET POST PUT DELETE
// OPTIONS TRACE PATCH), an origin-form target ('/' first, no fragment) and none of the fields that
// change how evhttp frames or answers it (Connection, Keep-Alive, Proxy-Connection,
// Content-Length, Transfer-Encoding, Expect, Upgrade, TE), nor X-Forklock-Token (a control's
// token goes the general way). Host, Origin and Sec-Fetch-Site are kept for the site checks.
// Anything else is nullopt: evhttp parses it as before, as it does a target starting with "//" (an authority to
// evhttp's URI parser, whose path the adapter refuses). The views point into `request`.
//
// format_response: the bytes evhttp 2.1 writes for the same response to an HTTP/1.1 request, in
// its order: the status line, Content-Type and the extra headers as given, then Date and
// Content-Length (none for 1xx, 204 and 304; the body, if any, as evhttp sends it anyway).
//
// Pure: no I/O, no clock (the caller passes the Date value).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace forklock {

struct SimpleRequest {
    std::string_view method; // "GET", "POST", ...
    std::string_view path;   // as sent, percent-encoding included
    std::string_view query;  // after '?', without it; empty if none
    std::size_t bytes = 0;   // of the whole request
    // What the site checks read (app/site_guard.h), trimmed; the first of each field.
    std::optional<std::string_view> host{};   // Host; nullopt when absent
    std::optional<std::string_view> origin{}; // Origin; nullopt when absent
    std::string_view fetch_site{};            // Sec-Fetch-Site; empty when absent
};

std::optional<SimpleRequest> parse_simple_request(std::string_view request);

struct ResponseParts {
    int status = 200;
    std::string_view reason;
    std::string_view content_type;
    const std::vector<std::pair<std::string, std::string>>* headers = nullptr; // may be null
    std::string_view body;
    std::string_view date; // RFC 1123, e.g. "Tue, 01 Dec 2026 20:06:16 GMT"
};

void format_response(const ResponseParts& r, std::string& out);

} // namespace forklock
