#pragma once
// The rules of the dashboard's controls (/control/kill, /control/config), apart from the handlers
// so tests can state them without a request. The handlers are Api members (api_control.cpp).
//
// Who may control: the bearer of the token, in the X-Forklock-Token header (never ?token=: URLs
// end up in logs and history), unless --dashboard-controls is off. The token is --dashboard-token,
// or the random one the master logs at start. loopback (the default) and token differ in who gets
// it without asking: in loopback mode the dashboard page served to a loopback peer carries it
// (site_guard.h). A header is what a page of another site cannot send: a cross-site fetch with it
// needs a CORS preflight, which this server never grants, and an HTML form cannot set one.
// Read-only views need nothing.

#include <optional>
#include <string>
#include <string_view>

#include "app/api.h"
#include "app/options.h"

namespace forklock {

// tokens_equal: compares in time that depends on the lengths only, not on where they differ, so
// a remote guesser learns nothing from the answer's timing. An empty `expected` matches nothing.
bool tokens_equal(std::string_view given, std::string_view expected) noexcept;

// control_refusal: why `request` may not use a control (the 403's message, naming the flags), or
// nullopt when it may. `options` null: refused (a process without options has no token).
std::optional<std::string> control_refusal(const Request& request, const Options* options);

// parse_bool: "true"/"1" and "false"/"0"; nullopt for anything else.
std::optional<bool> parse_bool(std::string_view text);

} // namespace forklock
