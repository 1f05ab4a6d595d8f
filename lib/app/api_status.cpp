// The read-only status pages of the API: /locks, /workers, /metrics.

#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/api.h"
#include "os/monotonic_clock.h"

namespace forklock {
namespace {

using Json = nlohmann::ordered_json;

// How long /locks waits for PostgreSQL's pg_locks before it answers 503.
constexpr std::chrono::milliseconds kServerLocksTimeout{2000};

double ns_to_ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

Json key_json(const KeyStats& k)
{
    return Json{{"key", k.key},
                {"owner_pid", k.owner_pid},
                {"waiters", k.waiters},
                {"acquisitions", k.acquisitions},
                {"contended", k.contended},
                {"wait_ms_total", ns_to_ms(k.wait_ns_total)},
                {"wait_ms_max", ns_to_ms(k.wait_ns_max)},
                {"recoveries", k.recoveries},
                {"last_dead_owner", k.last_dead_owner},
                {"last_token", k.last_token},
                {"lease_left_ms", k.lease_left_ms},
                {"lease_takeovers", k.lease_takeovers}};
}

// One lock as the lock server sees it: who (host, pid, backend), granted or waiting, since when.
Json server_lock_json(const ServerLock& l)
{
    return Json{{"key", l.key},
                {"state", l.granted ? "granted" : "waiting"},
                {"host", l.host},
                {"pid", l.pid},
                {"backend_pid", l.backend_pid},
                {"client_addr", l.client_addr},
                {"application_name", l.application_name},
                {"since", l.since},
                {"for_ms", l.for_ms},
                {"ttl_ms", l.ttl_ms},
                {"token", l.token}};
}

// Prometheus label values escape backslash, quote and newline.
std::string label(std::string_view value)
{
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"') out += '\\';
        out += c == '\n' ? 'n' : c;
    }
    return out;
}

void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help)
{
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// A Prometheus histogram: cumulative _bucket{le}, then _sum and _count.
void histogram(std::string& out, std::string_view name, std::string_view help,
               const HistogramSnapshot& h)
{
    auto add = std::back_inserter(out);
    metric(out, name, "histogram", help);
    for (std::size_t i = 0; i < kHistogramBoundsNs.size(); ++i)
        fmt::format_to(add, "{}_bucket{{le=\"{}\"}} {}\n", name,
                       static_cast<double>(kHistogramBoundsNs[i]) / 1e9, h.cumulative[i]);
    fmt::format_to(add, "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {:.9f}\n{}_count {}\n", name, h.count,
                   name, h.sum_seconds, name, h.count);
}

// The per-worker fields, or with `server` the top-level ones (the target counts, the theory).
void add_config(Json& out, const ServerConfig& c, bool server)
{
    out["generation"] = c.generation;
    out["mode"] = to_string(c.mode);
    out["preload"] = c.preload;
    if (!server) return;
    out["workers_target"] = c.workers;
    out["threads"] = c.threads;
    out["safe"] = serializes_increments(c.mode, c.preload, c.workers, c.threads);
    out["explain"] = explain(c.mode);
}

Json deaths_json(const std::vector<WorkerDeath>& deaths)
{
    Json out = Json::array();
    for (const auto& d : deaths)
        out.push_back(Json{{"pid", d.pid},
                           {"died_ns", d.died_ns},
                           {"signal", d.signal},
                           {"status", d.status},
                           {"held", d.held},
                           {"released", d.released}});
    return out;
}

// The dashboard's header: what runs, what the theory says of it, who may control, the deaths.
void add_server_view(Json& body, const ApiContext& ctx)
{
    add_config(body, ctx.scoreboard->applied_config(), true);
    body["controls"] = ctx.options ? to_string(ctx.options->dashboard_controls) : "off";
    body["now_ns"] = monotonic_ns();
    body["deaths"] = deaths_json(ctx.scoreboard->deaths());
}

} // namespace

Response Api::locks() const
{
    TableStats s = ctx_.table->stats();
    Json keys = Json::array();
    for (const auto& k : ctx_.table->key_stats()) keys.push_back(key_json(k));
    Json body{{"mode", to_string(ctx_.table->mode())},
              {"pid", ctx_.pid},
              {"lease_ms", ctx_.table->options().lease_ms},
              {"fencing", ctx_.options != nullptr && ctx_.options->fencing},
              {"shared", s.shared},
              {"capacity", s.capacity},
              {"keys_in_use", s.keys},
              {"active", s.active},
              {"keys_high_water", s.keys_high_water},
              {"evictions", s.evictions},
              {"full_errors", s.full_errors},
              {"recoveries", s.recoveries},
              {"keys", std::move(keys)}};
    if (facts(ctx_.table->mode()).uses_lock_server) {
        // This worker's table sees only its own holders; the server sees every process and host.
        // Asked on this thread's session, which holds nothing between requests; a PostgreSQL
        // that is down or slow throws LockServerError: 503.
        Json holders = Json::array();
        for (const auto& l : ctx_.table->server_locks(kServerLocksTimeout))
            holders.push_back(server_lock_json(l));
        body["holders"] = std::move(holders);
    }
    return {200,
            "application/json",
            body.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n",
            {}};
}

Response Api::workers() const
{
    if (ctx_.scoreboard == nullptr) return json_error(503, "no scoreboard in this process");
    Json list = Json::array();
    for (const auto& w : ctx_.scoreboard->snapshot()) {
        list.push_back(Json{{"pid", w.pid},
                            {"age_s", w.age_s},
                            {"requests", w.requests},
                            {"state", to_string(w.state)},
                            {"in_flight", w.in_flight}});
        if (w.config) add_config(list.back(), *w.config, false);
    }
    auto& totals = ctx_.scoreboard->totals();
    Json body{{"master_pid", totals.master_pid.load()},
              {"workers", std::move(list)},
              {"restarts", totals.restarts.load()}};
    add_server_view(body, ctx_);
    return {200, "application/json", body.dump() + "\n", {}};
}

Response Api::metrics() const
{
    std::string out;
    auto add = std::back_inserter(out);
    if (ctx_.scoreboard != nullptr) {
        auto workers = ctx_.scoreboard->snapshot();
        auto& t = ctx_.scoreboard->totals();
        metric(out, "forklock_http_requests_total", "counter", "HTTP requests served, per worker.");
        for (const auto& w : workers)
            fmt::format_to(add, "forklock_http_requests_total{{pid=\"{}\"}} {}\n", w.pid,
                           w.requests);
        metric(out, "forklock_http_connections", "gauge", "Connections open, per worker.");
        for (const auto& w : workers)
            fmt::format_to(add, "forklock_http_connections{{pid=\"{}\"}} {}\n", w.pid,
                           w.connections);
        metric(out, "forklock_http_connection_cap_reached_total", "counter",
               "Times a worker stopped accepting at --worker-connections, per worker.");
        for (const auto& w : workers)
            fmt::format_to(add, "forklock_http_connection_cap_reached_total{{pid=\"{}\"}} {}\n",
                           w.pid, w.cap_reached);
        metric(out, "forklock_http_accept_backoffs_total", "counter",
               "Runs of failed accept() calls (EMFILE...) that paused accepting, per worker.");
        for (const auto& w : workers)
            fmt::format_to(add, "forklock_http_accept_backoffs_total{{pid=\"{}\"}} {}\n", w.pid,
                           w.accept_backoffs);
        metric(out, "forklock_workers", "gauge", "Worker processes alive.");
        fmt::format_to(add, "forklock_workers {}\n", workers.size());
        metric(out, "forklock_worker_restarts_total", "counter",
               "Workers respawned after exiting on their own.");
        fmt::format_to(add, "forklock_worker_restarts_total {}\n", t.restarts.load());
        metric(out, "forklock_increments_total", "counter", "Successful increments.");
        fmt::format_to(add, "forklock_increments_total {}\n", t.increments.load());
        metric(out, "forklock_lock_wait_seconds_total", "counter",
               "Time increments waited for their key's lock.");
        fmt::format_to(add, "forklock_lock_wait_seconds_total {:.9f}\n",
                       static_cast<double>(t.lock_wait_ns.load()) / 1e9);
        metric(out, "forklock_lock_hold_seconds_total", "counter",
               "Time increments held their key's lock.");
        fmt::format_to(add, "forklock_lock_hold_seconds_total {:.9f}\n",
                       static_cast<double>(t.lock_hold_ns.load()) / 1e9);
        metric(out, "forklock_lock_timeouts_total", "counter",
               "Increments that gave up waiting (timeout_ms).");
        fmt::format_to(add, "forklock_lock_timeouts_total {}\n", t.lock_timeouts.load());
    }
    TableStats s = ctx_.table->stats();
    metric(out, "forklock_lock_recoveries_total", "counter", "Locks taken back from dead holders.");
    fmt::format_to(add, "forklock_lock_recoveries_total {}\n", s.recoveries);
    metric(out, "forklock_lock_table_full_total", "counter",
           "Lock requests refused because every slot was busy.");
    fmt::format_to(add, "forklock_lock_table_full_total {}\n", s.full_errors);
    metric(out, "forklock_lock_keys", "gauge", "Keys bound to a slot of the lock table.");
    fmt::format_to(add, "forklock_lock_keys {}\n", s.keys);
    metric(out, "forklock_lock_active", "gauge", "Keys held or waited on now.");
    fmt::format_to(add, "forklock_lock_active {}\n", s.active);
    metric(out, "forklock_lock_acquisitions_total", "counter", "Acquisitions per key (top 50).");
    for (const auto& k : ctx_.table->key_stats(50))
        fmt::format_to(add, "forklock_lock_acquisitions_total{{key=\"{}\"}} {}\n", label(k.key),
                       k.acquisitions);
    lock_metrics(out);
    return {200, "text/plain; version=0.0.4", std::move(out), {}};
}

// Shared by every worker (made by the master before fork): one scrape sees all of them.
void Api::lock_metrics(std::string& out) const
{
    if (ctx_.metrics == nullptr) return;
    histogram(out, "forklock_lock_wait_seconds",
              "Time increments waited for their key's lock (timeouts included).",
              ctx_.metrics->wait().snapshot());
    histogram(out, "forklock_lock_hold_seconds", "Time increments held their key's lock.",
              ctx_.metrics->hold().snapshot());
    metric(out, "forklock_lock_overlaps_total", "counter",
           "Acquisitions that found another holder of the same key inside its section (a per-key "
           "holders count in shared memory).");
    fmt::format_to(std::back_inserter(out), "forklock_lock_overlaps_total {}\n",
                   ctx_.metrics->overlaps());
}

} // namespace forklock
