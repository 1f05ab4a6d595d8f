#pragma once
// GET /dashboard and its assets: the live classroom page (lib/app/dashboard/), served from
// constants compiled into the binary. The page itself only reads the JSON API and posts to the
// control endpoints, so this handler needs no lock and no shared memory.
//
//   GET /dashboard, /dashboard/            the page (text/html)
//   GET /dashboard/NAME                    dashboard.js, lanes.js, ... (their content types)
//
// The page carries the controls' token in <meta name="forklock-token"> when Api::dashboard_page
// passes one (site_guard.h: page_may_carry_token), and is then never stored by a cache. No
// dashboard answer may be framed by another page (clickjacking) or send a Referer (its URL may
// hold ?token=).
//
// Thread safety: a pure function of its arguments. Other methods answer 405, other names 404.

#include <string_view>

#include "app/api.h"

namespace forklock {

// dashboard: the response for a path that is /dashboard or starts with /dashboard/; `token`, when
// not empty, goes into the page.
Response dashboard(const Request& request, std::string_view token = {});

// html_attribute: `text` escaped for a double-quoted HTML attribute value.
std::string html_attribute(std::string_view text);

} // namespace forklock
