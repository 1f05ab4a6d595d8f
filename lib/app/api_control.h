#pragma once
// The rules of the dashboard's controls (/control/kill, /control/config), apart from the handlers
// so tests can state them without a request. The handlers are Api members (api_control.cpp).
//
// Who may control: --dashboard-controls loopback (the default) admits a loopback peer or the
// token's bearer; token admits the token's bearer only; off admits nobody. The token is
// --dashboard-token, or the random one the master logs at start. Read-only views need nothing.

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
