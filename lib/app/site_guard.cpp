#include "app/site_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include <fmt/format.h>

#include "app/api.h"

namespace forklock {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view text)
{
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

// A name as compared: lower case, without the trailing dot of a fully qualified name.
std::string canonical(std::string_view name)
{
    if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
    return lowered(name);
}

bool is_loopback_address(const std::string& name)
{
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, name.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    if (::inet_pton(AF_INET6, name.c_str(), &v6) != 1) return false;
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
}

bool any_host_asked(const Options& o)
{
    return std::find(o.allowed_hosts.begin(), o.allowed_hosts.end(), "*") != o.allowed_hosts.end();
}

bool listed(const std::vector<std::string>& names, std::string_view name)
{
    const std::string wanted = canonical(name);
    return std::any_of(names.begin(), names.end(),
                       [&](const std::string& n) { return canonical(n) == wanted; });
}

// An authority (host[:port]) with the scheme's default port made explicit, lower case.
std::string with_port(std::string_view authority, std::string_view scheme)
{
    const bool bracketed = authority.starts_with('[');
    const std::size_t close = bracketed ? authority.find(']') : 0;
    const bool has_port = authority.find(':', close == std::string_view::npos ? 0 : close) !=
                          std::string_view::npos;
    std::string out = lowered(authority);
    if (!has_port) out += scheme == "https" ? ":443" : ":80";
    return out;
}

// Whether the Origin names the server the request was sent to (its Host).
bool same_origin(std::string_view origin, const std::optional<std::string>& host)
{
    const std::size_t sep = origin.find("://");
    if (!host || sep == std::string_view::npos) return false; // "null", or nothing to match
    const std::string_view scheme = origin.substr(0, sep);
    return with_port(origin.substr(sep + 3), scheme) == with_port(*host, scheme);
}

constexpr const char* kOwnPages =
    "a request that changes state must come from this server's own pages (or from a client "
    "that is not a browser, such as curl)";

} // namespace

HostPolicy host_policy(const Options& o)
{
    if (any_host_asked(o)) return {true, {}};
    if (o.allowed_hosts.empty() && !is_loopback_host(o.bind.host)) return {true, {}};
    HostPolicy policy{false, {}};
    for (const auto& name : o.allowed_hosts) policy.names.push_back(canonical(name));
    return policy;
}

std::string describe_host_policy(const Options& o)
{
    const HostPolicy policy = host_policy(o);
    if (policy.any && any_host_asked(o)) return "answers any Host (--allowed-hosts '*')";
    if (policy.any)
        return fmt::format("answers any Host: {} is not a loopback address (--allowed-hosts "
                           "NAME,... answers only those names and loopback ones)",
                           o.bind.host);
    std::string names = "localhost, 127.x.y.z, [::1]";
    for (const auto& name : policy.names) names += ", " + name;
    return fmt::format("answers only Host {} (with any port); other names get 403 "
                       "(--allowed-hosts adds names)",
                       names);
}

bool is_loopback_host(std::string_view name)
{
    const std::string n = canonical(name);
    return n == "localhost" || n.ends_with(".localhost") || is_loopback_address(n);
}

std::string_view host_name(std::string_view host)
{
    if (host.starts_with('[')) {
        const std::size_t close = host.find(']');
        return close == std::string_view::npos ? host : host.substr(1, close - 1);
    }
    return host.substr(0, host.find(':'));
}

std::optional<std::string> host_refusal(const std::optional<std::string>& host,
                                        const HostPolicy& policy)
{
    if (policy.any || !host) return std::nullopt;
    const std::string_view name = host_name(*host);
    if (is_loopback_host(name) || listed(policy.names, name)) return std::nullopt;
    return fmt::format("this server does not answer to the name '{}' (Host: {}): bound to a "
                       "loopback address, it answers localhost, 127.x.y.z and [::1]{}, so a web "
                       "page whose name was re-pointed at 127.0.0.1 (DNS rebinding) cannot reach "
                       "it; start it with --allowed-hosts {} to answer this name",
                       name, *host, policy.names.empty() ? "" : " and its --allowed-hosts", name);
}

std::optional<std::string> cross_site_refusal(const Request& r)
{
    if (r.method == "GET" || r.method == "HEAD") return std::nullopt;
    if (r.fetch_site == "cross-site" || r.fetch_site == "same-site")
        return fmt::format("refused: the browser says this request comes from another site "
                           "(Sec-Fetch-Site: {}); {}",
                           r.fetch_site, kOwnPages);
    if (r.origin && !same_origin(*r.origin, r.host))
        return fmt::format("refused: the request comes from the page of {} (Origin), not from "
                           "this server ({}); {}",
                           *r.origin, r.host ? "Host: " + *r.host : "no Host", kOwnPages);
    return std::nullopt;
}

bool page_may_carry_token(const Request& r, const Options& o)
{
    if (o.dashboard_controls != DashboardControls::loopback || !r.from_loopback || !r.host)
        return false;
    const std::string_view name = host_name(*r.host);
    return is_loopback_host(name) || (name != "*" && listed(o.allowed_hosts, name));
}

std::string mask_tokens(std::string_view text)
{
    constexpr std::string_view kName = "token=";
    std::string out;
    std::size_t from = 0;
    for (std::size_t at = text.find(kName); at != std::string_view::npos;
         at = text.find(kName, at + 1)) {
        if (at != 0 && text[at - 1] != '?' && text[at - 1] != '&') continue;
        const std::size_t value = at + kName.size();
        const std::size_t end = std::min(text.find_first_of("& #\"", value), text.size());
        out.append(text.substr(from, value - from)).append("***");
        from = end;
    }
    return out.append(text.substr(from));
}

} // namespace forklock
