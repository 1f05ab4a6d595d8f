#include "app/api_dashboard.h"

#include <fmt/format.h>

#include <forklock/lock_mode.h>

#include "app/dashboard/assets.h"

namespace forklock {
namespace {

constexpr std::string_view kPrefix = "/dashboard";

const DashboardAsset* find_asset(std::string_view name)
{
    for (const auto& asset : kDashboardAssets)
        if (asset.name == name) return &asset;
    return nullptr;
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

Response dashboard(const Request& request)
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
    // no-cache: the browser revalidates, so a rebuilt server never runs yesterday's script.
    return {200,
            std::string(asset->content_type),
            page_body(*asset),
            {{"Cache-Control", "no-cache"}, {"X-Content-Type-Options", "nosniff"}}};
}

} // namespace forklock
