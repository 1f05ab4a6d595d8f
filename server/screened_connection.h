#pragma once
// new_screened_bufferevent: the bufferevent evhttp_set_bevcb hands evhttp for each accepted
// connection: a plain socket bufferevent whose input buffer runs every new byte through a
// RequestScreen before evhttp's read callback sees it (an evbuffer callback runs inside the read,
// between the recv() and evhttp's parse), and a per-connection timer for the nginx-style
// timeouts, which the screen can run because it knows the connection's phase.
//
// A rejected request: the bytes from the offending one on are cut from the input (evhttp never
// sees a complete bad request), and once evhttp has answered the requests before it in the
// pipeline, the connection gets the 400 or 505 (JSON {"error": rule}, Connection: close)
// straight on the socket, a FIN, and a lingering close: later input is discarded until the
// client closes or `linger` passes (closing at once with unread input would send a RST, which
// can destroy the answer before the client reads it).
//
// Timeouts (like nginx's client_header_timeout, client_body_timeout, keepalive_timeout):
// `header` from the connection's start or a request's first byte to the end of its head,
// whatever trickles in (slowloris); `body` between two reads of a body; `keepalive` idle between
// requests, counted from the last response byte written. A head or body timeout answers 408 when
// nothing else is being written, then closes as above; an idle connection is just closed.
//
// Simple requests: when one read brings exactly one complete request to an idle connection (nothing
// left in the input, nothing being written) and parse_simple_request accepts it, `simple` may
// answer it (true, the response's bytes in `out`): the request is cut from the input before
// evhttp's read callback runs, so evhttp never sees it, and the answer goes straight to the socket
// (what the socket does not take waits in the output buffer, with evhttp's write callback unset
// until evhttp writes again, so its write-done callback never runs for a reply it did not send).
// False: evhttp parses it as usual. `unsent(true)` says such a rest is waiting, `unsent(false)`
// that it went out or the connection closed first: a loop that stops gracefully waits for it, as
// for evhttp's replies in flight.
//
// Graceful stop: the connection is a member of its loop's ConnectionDrain (connection_drain.h).
// Once the drain starts, a connection between requests (idle keep-alive, or accepted with nothing
// sent yet) gets kDrainGrace to send its next request, which evhttp answers with Connection:
// close, as every answer of a stopping loop, and then closes; one that sends nothing in that time
// is closed then. Closing idle keep-alive connections at once would turn each request a client
// is sending at that moment into a reset: a client in a loop (wrk) always is.

// One loop thread; the object lives as long as evhttp's connection (its close callback frees
// it), so this takes evhttp_connection_set_closecb for itself: code that needs to know when a
// connection closes passes `closed`, called from that callback.

#include <chrono>
#include <functional>
#include <string>

#include "connection_drain.h"
#include "simple_request.h"

struct bufferevent;
struct event_base;

namespace forklock {

struct ConnectionTimeouts {
    std::chrono::milliseconds header{10'000};
    std::chrono::milliseconds body{10'000};
    std::chrono::milliseconds keepalive{75'000}; // 0: no keep-alive (the adapter says close)
    std::chrono::milliseconds linger{2'000};
};

// The answer to a simple request from a peer on loopback (`from_loopback`), or false to leave it to
// evhttp; must decide before it does anything with the request.
using SimpleRequestHandler =
    std::function<bool(const SimpleRequest& request, bool from_loopback, std::string& out)>;

inline constexpr std::chrono::milliseconds kDrainGrace{1'000};

// Returns nullptr if libevent can't allocate. `timeouts` and `drain` must outlive the connection.
bufferevent* new_screened_bufferevent(event_base* base, const ConnectionTimeouts& timeouts,
                                      ConnectionDrain& drain, std::function<void()> closed = {},
                                      SimpleRequestHandler simple = {},
                                      std::function<void(bool)> unsent = {});

} // namespace forklock
