#include "app/api_dashboard.h"

#include <fmt/format.h>

#include <forklock/lock_mode.h>

#include "app/dashboard/assets.h"

namespace forklock {
namespace {

constexpr std::string_view kPrefix = "/dashboard";
constexpr std::string_view kTokenMeta = R"(<meta name="forklock-token" content="">)";

const DashboardAsset* find_asset(std::string_view name)
{
    for (const auto& asset : kDashboardAssets)
        if (asset.name == name) return &asset;
    return nullptr;
}

// The page with the token in its <meta> tag; the page unchanged when it has no such tag.
std::string with_token(std::string_view page, std::string_view token)
{
    std::string out(page);
    const std::size_t at = out.find(kTokenMeta);
    if (at == std::string::npos) return out;
    const std::size_t value = at + kTokenMeta.size() - 2; // inside content=""
    out.insert(value, html_attribute(token));
    return out;
}

// The page's mode select, one <option> per row of the mode table, where index.html says.
std::string page_body(const DashboardAsset& asset)
{
    std::string body(asset.body);
    if (asset.name != "index.html") return body;
    static constexpr std::string_view kMarker = "<!-- lock modes -->";
    std::string options;
    for (const ModeFacts& m : lock_modes()) options += fmt::format("<option>{}</option>", m.name);
    if (const auto at = body.find(kMarker); at != std::string::npos)
        body.replace(at, kMarker.size(), options);
    return body;
}

} // namespace

std::string html_attribute(std::string_view text)
{
    std::string out;
    for (const char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '"': out += "&quot;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        default: out += c;
        }
    }
    return out;
}

Response dashboard(const Request& request, std::string_view token)
{
    std::string_view path(request.path);
    std::string_view name = path.substr(kPrefix.size());
    if (name.empty() || name == "/")
        name = "index.html";
    else
        name.remove_prefix(1);
    const DashboardAsset* asset = find_asset(name);
    if (asset == nullptr) return json_error(404, fmt::format("no such path: {}", request.path));
    if (request.method != "GET" && request.method != "HEAD") {
        Response r = json_error(
            405, fmt::format("method {} is not allowed here; use GET, HEAD", request.method));
        r.headers.emplace_back("Allow", "GET, HEAD");
        return r;
    }
    const bool carries = !token.empty() && name == "index.html";
    // no-cache: the browser revalidates, so a rebuilt server never runs yesterday's script; a
    // page holding the token is not stored at all.
    return {200,
            std::string(asset->content_type),
            carries ? with_token(page_body(*asset), token) : page_body(*asset),
            {{"Cache-Control", carries ? "no-store" : "no-cache"},
             {"X-Content-Type-Options", "nosniff"},
             {"X-Frame-Options", "DENY"},
             {"Content-Security-Policy", "frame-ancestors 'none'"},
             {"Referrer-Policy", "no-referrer"}}};
}

Response Api::dashboard_page(const Request& request) const
{
    const bool carries = ctx_.options && page_may_carry_token(request, *ctx_.options);
    return dashboard(request, carries ? std::string_view(ctx_.options->dashboard_token) : "");
}

} // namespace forklock
