#pragma once
// fire_increments: `concurrency` client threads share `requests` increments of one key, each on
// its own connection, so they spread across workers and overlap inside the server.

#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include <sys/types.h>

namespace forklock::demo {

struct LoadPlan {
    std::uint16_t port = 0;
    std::string key;
    int requests = 0;
    int concurrency = 1;
    int hold_ms = 0;
};

// An increment that waited this long for its lock met another one holding it.
inline constexpr double kWaitedMs = 0.5;

struct LoadResult {
    int sent = 0;
    int ok = 0;
    int errors = 0;
    std::set<pid_t> pids;     // workers that served a 2xx increment
    int waited = 0;           // 2xx replies that waited for the lock (kWaitedMs or more)
    int duplicate_values = 0; // 2xx replies that returned a value another reply returned too:
                              // the visible trace of a lost update
    std::string first_error;
    double seconds = 0;
};

// Blocks until every request is answered or failed; calls progress(done) about every 100 ms
// from the calling thread. Rethrows Interrupted after joining its threads.
LoadResult fire_increments(const LoadPlan& plan, const std::function<void(int)>& progress);

} // namespace forklock::demo
