#include "app/api_dashboard.h"

#include <fmt/format.h>

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
            std::string(asset->body),
            {{"Cache-Control", "no-cache"}, {"X-Content-Type-Options", "nosniff"}}};
}

} // namespace forklock
