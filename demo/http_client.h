#pragma once
// A minimal HTTP/1.1 client on plain blocking-free sockets, loopback only: one request per
// connection ("Connection: close"), so each request is accepted anew and can land on any worker.
// Every wait is a poll() slice bounded by the request's deadline and by Ctrl-C (interrupt.h).

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace forklock::demo {

using Clock = std::chrono::steady_clock;

struct HttpResponse {
    int status = 0;
    std::string body;

    // The body as JSON; a discarded (null) value when it is not JSON.
    [[nodiscard]] nlohmann::json json() const;
    [[nodiscard]] bool ok() const noexcept { return status >= 200 && status < 300; }
};

// The server did not answer in time, closed early or sent something that is not HTTP.
struct HttpError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Sends METHOD TARGET to 127.0.0.1:port and returns the response. Throws HttpError, or
// std::system_error for a failed socket call, or Interrupted.
HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view target,
                          Clock::duration timeout);

// Parses a raw response. nullopt while it is incomplete; with at_eof, whatever arrived must be
// complete (a body without Content-Length runs to EOF). Throws HttpError when malformed.
std::optional<HttpResponse> parse_http_response(std::string_view raw, bool at_eof);

} // namespace forklock::demo
