#pragma once
// Which site a request comes from, decided from its headers alone (docs/security.md has the
// threat model these rules serve). Pure functions: no sockets, no clock; Api::handle() calls them
// for every request, whichever way it was parsed (evhttp, or the simple-request fast path).
//
// Host check (DNS rebinding). A page of attacker.example whose name then resolves to 127.0.0.1
// talks to this server as its own origin, so the browser lets it read the answers; its requests
// still say `Host: attacker.example`. A server bound to a loopback address therefore answers only
// a Host that is a loopback name or address (localhost, *.localhost, 127.x.y.z, [::1]), with or
// without a port, or a name given with --allowed-hosts; `--allowed-hosts '*'` answers any. A
// server bound to another address answers any Host unless --allowed-hosts names some. A request
// without Host (HTTP/1.0; HTTP/1.1 without one is a 400 before this) is answered: browsers always
// send one.
//
// Cross-site check (CSRF). A request that is not GET or HEAD is refused when the browser says it
// comes from another site: Sec-Fetch-Site cross-site or same-site (another port of 127.0.0.1 is
// the same site), or an Origin whose host and port are not the request's Host ("null" included).
// curl and load generators send neither, and pass.
//
// Controls (/control/...) need the token on top, in the X-Forklock-Token header (api_control.h).
// The dashboard page carries it (a <meta> tag) only when page_may_carry_token() allows.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/options.h"

namespace forklock {

struct Request; // app/api.h

struct HostPolicy {
    bool any = true;                // no Host check
    std::vector<std::string> names; // accepted besides loopback names: lower case, no port
};

// host_policy: what --bind and --allowed-hosts ask for (see above).
HostPolicy host_policy(const Options& options);

// describe_host_policy: the start-up log's sentence saying which Host values are answered.
std::string describe_host_policy(const Options& options);

// is_loopback_host: localhost, a name under .localhost, 127.0.0.0/8, ::1 or ::ffff:127.x.y.z
// (a Host's name part: brackets and port already removed; case and one trailing dot ignored).
bool is_loopback_host(std::string_view name);

// host_name: the name part of a Host value: "[::1]:8000" -> "::1", "Example.com:80" ->
// "Example.com".
std::string_view host_name(std::string_view host);

// host_refusal: the 403's message when `host` (the Host header, nullopt when absent) is not one
// this server answers; nullopt when it is.
std::optional<std::string> host_refusal(const std::optional<std::string>& host,
                                        const HostPolicy& policy);

// cross_site_refusal: the 403's message when `request` changes state and a browser says it comes
// from another site; nullopt otherwise.
std::optional<std::string> cross_site_refusal(const Request& request);

// page_may_carry_token: whether the dashboard page served for `request` may hold the token: in
// --dashboard-controls loopback, to a loopback peer that named this server by a loopback name or
// a listed --allowed-hosts name (so a rebinding page, whose Host is its own name, never gets it,
// even from a server that checks no Host).
bool page_may_carry_token(const Request& request, const Options& options);

// mask_tokens: `text` with the value of every token= query parameter replaced by ***.
std::string mask_tokens(std::string_view text);

} // namespace forklock
