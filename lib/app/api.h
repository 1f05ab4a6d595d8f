#pragma once
// The HTTP API as plain functions: Request in, Response out. No sockets, no libevent: the one
// adapter in server/http_adapter.cpp converts evhttp requests, and tests call handle() directly.
//
//   POST   /counter/{key}/increment?hold_ms=N&timeout_ms=M
//   GET    /counter/{key}        DELETE /counter/{key}
//   GET    /locks   /workers   /metrics   /healthz   /
//   GET    /trace?key=K&since=SEQ&limit=N&format=chrome   /analysis?key=K
//   POST   /control/kill?key=K|pid=P   /control/config?mode=M&preload=B&workers=N&threads=T
//   POST   /pair/increment?first=A&second=B&hold_ms=H&timeout_ms=T&ordered=0|1
//   GET    /step   POST /control/step?key=K&on=1|0   POST /control/step?request=ID|pid=P&tid=T
//
// Thread safety: handle() is const and may run on many threads at once; it blocks while it
// waits for a key's lock and while it holds it (hold_ms). It never throws: every failure is a
// JSON {"error": ...} response.

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "app/counter_store.h"
#include "app/options.h"
#include "app/scoreboard.h"
#include "app/site_guard.h"
#include <forklock/lock_table.h>
#include "trace/histogram.h"
#include "trace/trace_ring.h"

namespace forklock {

struct Request {
    std::string method;        // "GET", "POST", ...
    std::string path;          // as sent, percent-encoding included
    std::string query;         // after '?', without it
    std::string token{};       // the X-Forklock-Token header: for /control/...
    bool from_loopback = true; // the peer is 127.0.0.0/8 or ::1
    std::optional<std::string> host{};   // the Host header; nullopt when absent
    std::optional<std::string> origin{}; // the Origin header; nullopt when absent
    std::string fetch_site{};            // Sec-Fetch-Site; "" when absent
    std::string body{};                  // as sent (at most RequestLimits::body_bytes)
};

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers; // extra ones, e.g. Allow
};

inline constexpr int kMaxHoldMs = 60000;
inline constexpr int kMaxTimeoutMs = 60000;

struct ApiContext {
    LockTable* table = nullptr;
    const CounterStore* store = nullptr;
    Scoreboard* scoreboard = nullptr; // optional: /workers and totals need it
    pid_t pid = 0;                    // the worker answering
    TraceRing* trace = nullptr;     // optional: null with --no-trace (/trace, /analysis answer 404)
    LockMetrics* metrics = nullptr; // optional: the /metrics histograms and overlaps
    const Options* options = nullptr; // optional: without it every /control/... is refused
                                      // and writes are not fenced (Options::fencing)
    int listen_fd = -1; // optional: POST /control/step/replay sends its increments to it
};

Response json_error(int status, const std::string& message);

// Every request first passes the checks of site_guard.h (with options: the Host check; always:
// the cross-site check of a request that changes state): a refusal is a JSON 403.
class Api final {
public:
    explicit Api(ApiContext context);
    Response handle(const Request& request) const noexcept;

private:
    Response route(const Request& request) const;
    Response counter(const Request& request, std::string_view key, bool increment) const;
    Response increment(std::string_view key, const std::string& query) const;
    void record(TraceRecord& r, std::string_view key, TraceOutcome outcome) const noexcept;
    Response read(std::string_view key) const;
    Response reset(std::string_view key) const;
    Response index() const;
    Response locks() const;
    Response workers() const;
    Response metrics() const;
    void lock_metrics(std::string& out) const;
    Response trace(const Request& request) const;
    Response analysis(const Request& request) const;
    Response timed_out(std::string_view key, int timeout_ms) const;
    bool fencing() const noexcept { return ctx_.options != nullptr && ctx_.options->fencing; }
    void write_held(KeyGuard& guard, std::string_view key, TraceRecord& r) const;
    Response control(const Request& request) const;
    Response kill(const Request& request) const;
    Response kill_pid(pid_t pid, const std::string& key) const;
    Response config(const Request& request) const;
    Response pair(const Request& request) const;
    Response steps(const Request& request) const;
    Response step_control(const Request& request) const;
    Response step_one(StepBoard& board, const Request& request) const;
    std::uint64_t parked_id(StepBoard& board, const Request& request) const;
    Response step_replay(const Request& request) const;
    Response dashboard_page(const Request& request) const;
    ApiContext ctx_;
    HostPolicy hosts_; // from ctx_.options; any Host without options
};

// Query parameter `name` as an integer in [low, high]: nullopt if absent; throws BadRequest.
std::optional<int> query_int(const std::string& query, std::string_view name, int low, int high);

// Query parameter `name` as sent (no percent-decoding, as keys in paths); nullopt if absent.
std::optional<std::string> query_string(const std::string& query, std::string_view name);

class BadRequest : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

} // namespace forklock
