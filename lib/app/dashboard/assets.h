#pragma once
// The dashboard's HTML, CSS and JavaScript, compiled into the binary: lib/app/dashboard/embed.py
// turns each file beside this header into one DashboardAsset at build time, so the page needs no
// file on disk, no CDN and no build step of its own.

#include <span>
#include <string_view>

namespace forklock {

struct DashboardAsset {
    std::string_view name;         // the file's name, served as /dashboard/<name>
    std::string_view content_type; // with charset for text
    std::string_view body;
};

// Every asset, in the order embed.py was given them; constant after static initialisation.
extern const std::span<const DashboardAsset> kDashboardAssets;

} // namespace forklock
