#pragma once
// Between evhttp and the Api: an evhttp request becomes an Api Request (or the 4xx that refuses it
// before any handler runs), and an answered one becomes an access-log line. The one place that
// reads evhttp's request object; HttpLoop (http_adapter.h) drives the loop around it.

#include <cstddef>
#include <variant>

#include <event2/http.h>

#include "app/api.h"

namespace forklock {

// Every method evhttp parses reaches the Api, which answers those it doesn't serve with a JSON
// 405 and an Allow header; a method left out of evhttp's allowed set would get evhttp's own 501
// with an HTML body, which no client of a JSON API expects.
constexpr ev_uint16_t kEveryMethod = EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                     EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH;

struct RequestLimits {
    std::size_t header_bytes; // the target, and all header lines: 414 and 431 above
    std::size_t body_bytes;   // 413 above
};

// to_request: the Request for the Api, with the fields the site guard and the controls decide on
// (Host, Origin, Sec-Fetch-Site, the token header, whether the peer is loopback); or a JSON 4xx.
std::variant<Request, Response> to_request(evhttp_request* req, const RequestLimits& limits);

// log_request: one access-log line for `req` answered with `response`, tokens masked.
void log_request(evhttp_request* req, const Response& response);

} // namespace forklock
