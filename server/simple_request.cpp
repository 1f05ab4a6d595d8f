#include "simple_request.h"

#include <array>
#include <charconv>

namespace forklock {
namespace {

// Whether `a` equals `lower`, a lower-case name, ignoring the case of `a`'s letters.
bool equals_lower(std::string_view a, std::string_view lower)
{
    const auto to_lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (a.size() != lower.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (to_lower(a[i]) != lower[i]) return false;
    return true;
}

// The fields after which evhttp frames or answers the request differently, or which only the
// dashboard's controls send (lower case).
constexpr std::array<std::string_view, 9> kDeclined = {
    "connection", "keep-alive", "proxy-connection", "content-length", "transfer-encoding", "expect",
    "upgrade",    "te",         "x-forklock-token"};

bool declined_field(std::string_view name)
{
    for (std::string_view d : kDeclined)
        if (equals_lower(name, d)) return true;
    return false;
}

// The fields the site checks read (site_guard.h), into `out`; the first of each.
void note_field(std::string_view name, std::string_view value, SimpleRequest& out)
{
    while (value.starts_with(' ') || value.starts_with('\t')) value.remove_prefix(1);
    while (value.ends_with(' ') || value.ends_with('\t')) value.remove_suffix(1);
    if (equals_lower(name, "host") && !out.host) out.host = value;
    if (equals_lower(name, "origin") && !out.origin) out.origin = value;
    if (equals_lower(name, "sec-fetch-site") && out.fetch_site.empty()) out.fetch_site = value;
}

// The header fields after the request line, up to the empty line that must end `rest`.
bool fields_are_simple(std::string_view rest, SimpleRequest& out)
{
    for (;;) {
        const std::size_t eol = rest.find("\r\n");
        if (eol == std::string_view::npos) return false;
        if (eol == 0) return rest.size() == 2; // the end of the head, and of the request
        const std::string_view line = rest.substr(0, eol);
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || declined_field(line.substr(0, colon))) return false;
        note_field(line.substr(0, colon), line.substr(colon + 1), out);
        rest.remove_prefix(eol + 2);
    }
}

// The methods evhttp parses, but HEAD (an answer without a body) and CONNECT (no path).
bool simple_method(std::string_view m)
{
    for (std::string_view known : {"GET", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"})
        if (m == known) return true;
    return false;
}

bool has_body(int status) { return status >= 200 && status != 204 && status != 304; }

} // namespace

std::optional<SimpleRequest> parse_simple_request(std::string_view request)
{
    constexpr std::string_view kVersion = " HTTP/1.1\r\n";
    const std::size_t sp = request.find(' ');
    const std::size_t eol = request.find("\r\n");
    if (sp == std::string_view::npos || eol == std::string_view::npos ||
        eol + 2 < sp + kVersion.size())
        return std::nullopt;
    const std::string_view method = request.substr(0, sp);
    if (!simple_method(method)) return std::nullopt;
    const std::size_t target_end = eol + 2 - kVersion.size();
    if (request.substr(target_end, kVersion.size()) != kVersion) return std::nullopt;
    const std::string_view target = request.substr(sp + 1, target_end - sp - 1);
    if (target.empty() || target[0] != '/' || target.starts_with("//") ||
        target.find_first_of(" #") != std::string_view::npos)
        return std::nullopt;
    const std::size_t q = target.find('?');
    SimpleRequest out{method, target.substr(0, q),
                      q == std::string_view::npos ? std::string_view() : target.substr(q + 1),
                      request.size()};
    if (!fields_are_simple(request.substr(eol + 2), out)) return std::nullopt;
    return out;
}

void format_response(const ResponseParts& r, std::string& out)
{
    auto line = [&out](std::string_view name, std::string_view value) {
        out.append(name).append(": ").append(value).append("\r\n");
    };
    std::array<char, 16> number{};
    out.append("HTTP/1.1 ")
        .append(number.data(), std::to_chars(number.begin(), number.end(), r.status).ptr)
        .append(" ")
        .append(r.reason)
        .append("\r\n");
    line("Content-Type", r.content_type);
    if (r.headers)
        for (const auto& [name, value] : *r.headers) line(name, value);
    line("Date", r.date);
    if (has_body(r.status)) {
        const char* end = std::to_chars(number.begin(), number.end(), r.body.size()).ptr;
        line("Content-Length", {number.data(), static_cast<std::size_t>(end - number.data())});
    }
    out.append("\r\n").append(r.body);
}

} // namespace forklock
