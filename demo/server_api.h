#pragma once
// Typed calls to the server's HTTP API (lib/app/api.h): each is one request, on its own
// connection (harness::http_request), that gives up on Ctrl-C (throws Interrupted). A request
// that gets no response throws harness::HttpError.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "harness/http_client.h"
#include "trace_witness.h"

namespace forklock::demo {

using harness::Clock;
using harness::HttpError;

struct IncrementReply {
    int status = 0;           // 200, 503 (timeout_ms elapsed), or whatever the server said
    long value = 0;           // the new value (200)
    pid_t pid = 0;            // the worker that served it (200)
    pid_t recovered_from = 0; // a dead holder this acquisition took the key over from (200)
    double waited_ms = 0;     // how long it waited for the key's lock (200)
    pid_t owner_pid = 0;      // who held the key when timeout_ms elapsed (503)
    std::uint64_t token = 0;  // the grant's fencing token (200), or the refused one (409)
    std::uint64_t highest_token = 0; // 409 (--fencing): the newest token that wrote the key
    bool written = false; // the increment wrote: 200, or a 503 whose unlock found the lease gone
};

struct WorkersSnapshot {
    pid_t master_pid = 0;
    std::vector<pid_t> pids;
    int restarts = 0;
};

class ServerApi final {
public:
    // query_timeout bounds each GET: a worker thread blocked in a long hold may have accepted
    // (batched) the connection too, so callers that poll should use a short one and retry.
    explicit ServerApi(std::uint16_t port, Clock::duration query_timeout = std::chrono::seconds(5))
        : server_{"127.0.0.1", port}, query_timeout_(query_timeout)
    {
    }

    // POST /counter/KEY/increment?hold_ms=H[&timeout_ms=T][&write_delay_ms=D]; timeout_ms < 0
    // leaves it out, write_delay_ms (a wait after the last still_held() check) is sent when > 0.
    [[nodiscard]] IncrementReply increment(const std::string& key, int hold_ms, int timeout_ms,
                                           Clock::duration http_timeout,
                                           int write_delay_ms = 0) const;
    [[nodiscard]] long counter(const std::string& key) const;
    // owner_pid of KEY in GET /locks (or the pid of its granted holder in the lock server's
    // list); 0 when nobody holds it or the key is not listed.
    [[nodiscard]] pid_t lock_owner(const std::string& key) const;
    [[nodiscard]] WorkersSnapshot workers() const;
    [[nodiscard]] TraceWitness analysis(const std::string& key) const;
    // GET /trace?format=chrome: every record the ring holds, as Chrome Trace Event JSON.
    [[nodiscard]] nlohmann::json chrome_trace() const;

private:
    [[nodiscard]] harness::HttpResponse
    request(const std::string& method, const std::string& target, Clock::duration timeout) const;
    [[nodiscard]] nlohmann::json get_json(const std::string& target) const;

    harness::Endpoint server_;
    Clock::duration query_timeout_;
};

} // namespace forklock::demo
