#pragma once
// raw_exchange: for the tests that must send what no HTTP client would (garbage, truncated or
// malformed requests): write bytes on a plain TCP socket, read whatever comes back until the
// server closes or a deadline passes. It reads nothing into the reply: the bytes are returned as
// they came. Blocking; any thread.

#include <chrono>
#include <string>
#include <string_view>

#include "harness/http_client.h"
#include "os/unique_fd.h"

namespace forklock::harness {

// connect_raw opens a blocking TCP connection to `to` (e.g. a client that then says nothing).
// Throws std::system_error when socket() or connect() fails.
UniqueFd connect_raw(const Endpoint& to);

// raw_exchange sends `bytes` (as much as the server takes before it closes: it may answer 413 or
// 431 early), then returns everything received until EOF, a reset, or `timeout`.
std::string raw_exchange(const Endpoint& to, std::string_view bytes,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

// next_response reads from `fd` into `buffer` until it holds one whole response (by its
// Content-Length; none: a head only) and returns that response, removed from the buffer; "" if
// `deadline` passed or the socket closed first. For keep-alive exchanges, where EOF never comes.
std::string next_response(int fd, std::string& buffer,
                          std::chrono::steady_clock::time_point deadline);

// raw_response sends `bytes` on a new connection and returns the one response that follows,
// without waiting for the server to close ("" if none came within `timeout`).
std::string raw_response(const Endpoint& to, std::string_view bytes,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

} // namespace forklock::harness
