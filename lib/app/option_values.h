#pragma once
// The values of the server's flags that take parsing: addresses, host lists, log levels, the
// dashboard's controls. Pure functions, apart from the token's random source.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/log.h"

namespace forklock {

struct BindAddress {
    std::string host = "127.0.0.1"; // without brackets
    std::uint16_t port = 8000;
};

// Who may use the dashboard's controls (/control/...): the token's bearer, in every mode but off;
// loopback: the dashboard page served to a loopback peer carries the token; token: only a page
// opened with ?token= has it; off: nobody. Read-only views need nothing (api_control.h).
enum class DashboardControls { loopback, token, off };
std::optional<DashboardControls> parse_dashboard_controls(std::string_view name);
const char* to_string(DashboardControls controls) noexcept;

// "debug", "info", "warning", "error", "critical"; nullopt for anything else.
std::optional<LogLevel> parse_log_level(const std::string& name);

// --allowed-hosts: "a.example,b.example" or "*": the names, lower case, an IPv6 address without
// its brackets; nullopt when a name is empty or has a port.
std::optional<std::vector<std::string>> parse_allowed_hosts(std::string_view text);

// "HOST:PORT", "[V6]:PORT", or "HOST" (port 8000). nullopt when malformed.
std::optional<BindAddress> parse_bind(const std::string& text);
// "http://127.0.0.1:8000", "http://[::1]:8000".
std::string bind_url(const BindAddress& address);

// A fresh random 128-bit token, 32 hex digits (from std::random_device: /dev/urandom).
std::string make_dashboard_token();

} // namespace forklock
