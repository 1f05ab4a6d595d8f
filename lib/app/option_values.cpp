#include "app/option_values.h"

#include <cctype>
#include <charconv>
#include <random>

#include <fmt/format.h>

namespace forklock {
namespace {

std::optional<std::uint16_t> parse_port(const std::string& text)
{
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

} // namespace

std::optional<LogLevel> parse_log_level(const std::string& name)
{
    if (name == "debug") return LogLevel::debug;
    if (name == "info") return LogLevel::info;
    if (name == "warning") return LogLevel::warning;
    if (name == "error") return LogLevel::error;
    if (name == "critical") return LogLevel::critical;
    return std::nullopt;
}

std::optional<DashboardControls> parse_dashboard_controls(std::string_view name)
{
    if (name == "loopback") return DashboardControls::loopback;
    if (name == "token") return DashboardControls::token;
    if (name == "off") return DashboardControls::off;
    return std::nullopt;
}

const char* to_string(DashboardControls controls) noexcept
{
    switch (controls) {
    case DashboardControls::loopback: return "loopback";
    case DashboardControls::token: return "token";
    case DashboardControls::off: return "off";
    }
    return "?";
}

std::string make_dashboard_token()
{
    std::random_device random;
    std::string token;
    for (int i = 0; i < 4; ++i) token += fmt::format("{:08x}", random());
    return token;
}

std::optional<std::vector<std::string>> parse_allowed_hosts(std::string_view text)
{
    std::vector<std::string> names;
    while (!text.empty()) {
        const std::size_t comma = text.find(',');
        std::string_view name = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
        while (name.starts_with(' ')) name.remove_prefix(1);
        while (name.ends_with(' ')) name.remove_suffix(1);
        if (name.size() > 2 && name.starts_with('[') && name.ends_with(']'))
            name = name.substr(1, name.size() - 2);
        else if (name.find_first_of(":/[]") != std::string_view::npos)
            return std::nullopt;
        if (name.empty()) return std::nullopt;
        std::string lowered(name);
        for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        names.push_back(std::move(lowered));
    }
    return names;
}

std::optional<BindAddress> parse_bind(const std::string& text)
{
    BindAddress a;
    std::string port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string::npos || close == 1) return std::nullopt;
        a.host = text.substr(1, close - 1);
        if (close + 1 == text.size()) return a;
        if (text[close + 1] != ':') return std::nullopt;
        port = text.substr(close + 2);
    } else {
        auto colon = text.find(':');
        if (colon != text.rfind(':')) return std::nullopt; // bare IPv6 needs brackets
        a.host = text.substr(0, colon);
        if (colon == std::string::npos) return a.host.empty() ? std::nullopt : std::optional(a);
        port = text.substr(colon + 1);
    }
    auto p = parse_port(port);
    if (!p || a.host.empty()) return std::nullopt;
    a.port = *p;
    return a;
}

std::string bind_url(const BindAddress& a)
{
    bool v6 = a.host.find(':') != std::string::npos;
    return v6 ? fmt::format("http://[{}]:{}", a.host, a.port)
              : fmt::format("http://{}:{}", a.host, a.port);
}

} // namespace forklock
