#pragma once
// GET /dashboard and its assets: the live classroom page (lib/app/dashboard/), served from
// constants compiled into the binary. The page itself only reads the JSON API and posts to the
// control endpoints, so this handler needs no context: no lock, no shared memory.
//
//   GET /dashboard, /dashboard/            the page (text/html)
//   GET /dashboard/NAME                    dashboard.js, lanes.js, ... (their content types)
//
// Thread safety: a pure function of the request. Other methods answer 405, other names 404.

#include "app/api.h"

namespace forklock {

// dashboard: the response for a path that is /dashboard or starts with /dashboard/.
Response dashboard(const Request& request);

} // namespace forklock
