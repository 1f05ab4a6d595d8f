#include "app/api.h"

#include <charconv>
#include <chrono>
#include <thread>

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/api_dashboard.h"
#include "app/client_error.h"
#include "app/json_response.h"
#include "app/log.h"
#include "os/current_pid.h"
#include "os/monotonic_clock.h"

namespace forklock {

// The one JSON answer of every endpoint (json_response.h): defined here, beside the handlers that
// use it most, so an increment's answer is made in the file that handles it.
Response json_response(int status, const nlohmann::ordered_json& body)
{
    return {status,
            "application/json",
            body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n",
            {}};
}

namespace {

using Json = nlohmann::ordered_json;

Response method_not_allowed(std::string_view method, std::string allow)
{
    Response r =
        json_error(405, fmt::format("method {} is not allowed here; use {}", method, allow));
    r.headers.emplace_back("Allow", std::move(allow));
    return r;
}

// gettid() once per thread (and again in a forked child, whose pid differs).
pid_t current_tid() noexcept
{
    thread_local pid_t pid = 0, tid = 0;
    if (pid != current_pid()) {
        pid = current_pid();
        tid = static_cast<pid_t>(::gettid());
    }
    return tid;
}

// What a holder says when the lock server lost its key: before the write (nothing written), or
// found by the unlock after it (written, and the next holder may have been inside meanwhile).
std::string lost_message(std::string_view key, std::string_view what, bool written)
{
    return fmt::format("lost the lock server while holding key '{}'; this {} is not acknowledged "
                       "({})",
                       key, what,
                       written ? "it was written, but another holder may have been inside"
                               : "nothing was written");
}

Response lost_response(std::string_view key, bool written)
{
    return json_response(503, Json{{"error", lost_message(key, "increment", written)},
                                   {"key", key},
                                   {"written", written}});
}

// What an increment waits, both in ms (0..kMaxHoldMs): the query's hold_ms and write_delay_ms.
struct Delays {
    int hold_ms = 0;
    int write_delay_ms = 0;
};

// The increment under the held key: read, hold, check that the key is still held, write,
// release, with the trace's times. `delays`: hold_ms after the read, write_delay_ms after the
// last check, just before the write (where no check sees a lease that ran out meanwhile). The metrics see the thread inside from acquired to unlock.
// Returns whether the key was held until the unlock (false: the lock server lost it after the
// check; the write happened). On an exception, releases the key, calls on_failure(outcome) (the
// record still knows what it read) and rethrows; LockLostError: lost before the write, nothing
// written; StaleTokenError (`fenced`: the store's update_fenced with the guard's token): refused.
// With `step` active, it parks at the gates "read V" and "wrote V+1" (step_board.h).
template <typename OnFailure>
bool read_modify_write(const CounterStore& store, LockMetrics* metrics, KeyGuard& guard,
                       std::string_view key, Delays delays, TraceRecord& r, OnFailure on_failure,
                       StepTicket& step, bool fenced)
{
    if (metrics) metrics->enter(key);
    auto release = [&] {
        r.unlock_ns = monotonic_ns();
        if (metrics) metrics->leave(key);
        const bool held = guard.unlock();
        r.released_ns = monotonic_ns();
        return held;
    };
    const auto next = [&](std::uint64_t value) {
        r.read = value;
        step.gate(StepPoint::read, value);
        if (delays.hold_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delays.hold_ms));
        // The last moment to refuse: the next step is the pwrite (lock_table.h: the window).
        if (!guard.still_held()) throw LockLostError(lost_message(key, "increment", false));
        if (delays.write_delay_ms > 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(delays.write_delay_ms));
        return value + 1;
    };
    r.token = guard.token();
    try {
        r.wrote = fenced ? store.update_fenced(key, guard.token(), next) : store.update(key, next);
        step.gate(StepPoint::wrote);
    } catch (const StaleTokenError&) {
        release();
        on_failure(TraceOutcome::refused);
        throw;
    } catch (...) {
        release();
        on_failure(TraceOutcome::failed);
        throw;
    }
    return release();
}

// The board of a process without a scoreboard: never on.
StepBoardState& no_steps()
{
    static StepBoardState state{};
    return state;
}

// step_timeout_ms=N (1..600000): how long a parked increment waits for a step.
std::chrono::milliseconds step_timeout(const std::string& query)
{
    const auto ms = query_int(query, "step_timeout_ms", 1, 600'000);
    return ms ? std::chrono::milliseconds(*ms) : kDefaultStepTimeout;
}

bool is_get(const std::string& method) { return method == "GET" || method == "HEAD"; }

double ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

} // namespace

Response json_error(int status, const std::string& message)
{
    return json_response(status, Json{{"error", message}});
}

Api::Api(ApiContext context)
    : ctx_(context), hosts_(context.options ? host_policy(*context.options) : HostPolicy{})
{
}

// Server-side failures are logged whole (the call, its absolute paths, errno) and answered with
// what failed and why, without the server's directories (client_error.h).
Response Api::handle(const Request& request) const noexcept
{
    const auto logged = [&](const std::exception& e) {
        log(LogLevel::error, "{} {}: {}", request.method, request.path, e.what());
    };
    try {
        return route(request);
    } catch (const BadRequest& e) {
        return json_error(400, e.what());
    } catch (const StoreError& e) {
        logged(e);
        return json_error(is_disk_full(e.error()) ? 507 : 500, e.client_message());
    } catch (const TableFullError& e) {
        return json_error(503,
                          fmt::format("the lock table is full, try again later: {}", e.what()));
    } catch (const LockLostError& e) {
        return json_error(503, e.what());
    } catch (const StaleTokenError& e) { // --fencing: never acknowledged, nothing written
        return json_response(409, Json{{"error", e.what()},
                                       {"key", e.key()},
                                       {"token", e.token()},
                                       {"highest_token", e.highest()},
                                       {"written", false}});
    } catch (const StepGaveUp& e) {
        return json_response(503, Json{{"error", e.what()}, {"written", e.written()}});
    } catch (const LockServerError& e) {
        logged(e);
        return json_error(
            503, fmt::format("the lock server is unavailable: {}", strip_directories(e.what())));
    } catch (const std::system_error& e) { // the lock table's own files, semaphores, mutexes
        logged(e);
        const int err = e.code().value();
        return json_error(is_disk_full(err) ? 507 : 500,
                          fmt::format("the lock table failed: {}", errno_reason(err)));
    } catch (const std::exception& e) {
        logged(e);
        return json_error(500, strip_directories(e.what()));
    } catch (...) {
        return json_error(500, "unknown error");
    }
}

Response Api::route(const Request& r) const
{
    if (auto why = host_refusal(r.host, hosts_)) return json_error(403, *why);
    if (auto why = cross_site_refusal(r)) return json_error(403, *why);
    constexpr std::string_view kCounter = "/counter/";
    std::string_view path(r.path);
    if (path.starts_with(kCounter)) {
        auto rest = path.substr(kCounter.size());
        auto slash = rest.find('/');
        if (slash == std::string_view::npos) return counter(r, rest, false);
        if (rest.substr(slash) == "/increment") return counter(r, rest.substr(0, slash), true);
        return json_error(404, fmt::format("no such path: {}", r.path));
    }
    if (path == "/step") {
        if (!is_get(r.method)) return method_not_allowed(r.method, "GET, HEAD");
        return steps(r);
    }
    if (path.starts_with("/control/") || path == "/pair/increment") return control(r);
    if (path == "/trace" || path == "/analysis") {
        if (!is_get(r.method)) return method_not_allowed(r.method, "GET, HEAD");
        return path == "/trace" ? trace(r) : analysis(r);
    }
    if (path == "/dashboard" || path.starts_with("/dashboard/")) return dashboard_page(r);
    using Handler = Response (Api::*)() const;
    static const std::pair<std::string_view, Handler> kPages[] = {
        {"/", &Api::index},          {"/healthz", nullptr},       {"/locks", &Api::locks},
        {"/workers", &Api::workers}, {"/metrics", &Api::metrics},
    };
    for (const auto& [page, handler] : kPages) {
        if (path != page) continue;
        if (!is_get(r.method)) return method_not_allowed(r.method, "GET, HEAD");
        static const Response kHealthy =
            json_response(200, Json{{"status", "ok"}}); // the load balancer's hot path
        return handler ? (this->*handler)() : kHealthy;
    }
    return json_error(404, fmt::format("no such path: {}", r.path));
}

Response Api::counter(const Request& r, std::string_view key, bool increment) const
{
    if (increment && r.method != "POST") return method_not_allowed(r.method, "POST");
    if (!increment && !is_get(r.method) && r.method != "DELETE")
        return method_not_allowed(r.method, "GET, HEAD, DELETE");
    if (auto problem = key_error(key)) return json_error(400, *problem);
    if (increment) return this->increment(key, r.query);
    return r.method == "DELETE" ? reset(key) : read(key);
}

Response Api::increment(std::string_view key, const std::string& query) const
{
    const Delays delays{query_int(query, "hold_ms", 0, kMaxHoldMs).value_or(0),
                        query_int(query, "write_delay_ms", 0, kMaxHoldMs).value_or(0)};
    auto timeout_ms = query_int(query, "timeout_ms", 1, kMaxTimeoutMs);
    StepBoard board = ctx_.scoreboard ? ctx_.scoreboard->steps() : StepBoard(no_steps());
    StepTicket step(&board, key, step_timeout(query), beat_thread_heartbeat);
    step.gate(StepPoint::asked);
    TraceRecord r;
    r.requested_ns = monotonic_ns();
    KeyGuard guard;
    step.entering_lock();
    try {
        guard = timeout_ms ? ctx_.table->lock_for(key, std::chrono::milliseconds(*timeout_ms))
                           : ctx_.table->lock(key);
    } catch (...) {
        record(r, key, TraceOutcome::failed);
        throw;
    }
    if (!guard) {
        r.released_ns = monotonic_ns();
        record(r, key, TraceOutcome::timed_out);
        return timed_out(key, *timeout_ms);
    }
    r.acquired_ns = monotonic_ns();
    r.recovered_from = guard.recovered_from();
    step.gate(StepPoint::holds);
    bool kept = false;
    try {
        kept = read_modify_write(
            *ctx_.store, ctx_.metrics, guard, key, delays, r,
            [&](TraceOutcome o) { record(r, key, o); }, step, fencing());
    } catch (const LockLostError&) {
        return lost_response(key, false);
    }
    record(r, key, kept ? TraceOutcome::written : TraceOutcome::lost_lock);
    step.gate(StepPoint::unlocked);
    if (!kept) return lost_response(key, true);
    auto held = std::chrono::nanoseconds(r.unlock_ns - r.acquired_ns);
    if (ctx_.scoreboard) {
        auto& t = ctx_.scoreboard->totals();
        t.increments.fetch_add(1, std::memory_order_relaxed);
        t.lock_wait_ns.fetch_add(static_cast<std::uint64_t>(guard.waited().count()),
                                 std::memory_order_relaxed);
        t.lock_hold_ns.fetch_add(static_cast<std::uint64_t>(held.count()),
                                 std::memory_order_relaxed);
    }
    return json_response(200, Json{{"key", key},
                                   {"value", r.wrote},
                                   {"pid", ctx_.pid},
                                   {"lock_mode", to_string(ctx_.table->mode())},
                                   {"waited_ms", ms(guard.waited())},
                                   {"held_ms", ms(held)},
                                   {"token", guard.token()},
                                   {"recovered_from", guard.recovered_from()}});
}

// write_held: the traced read-modify-write of a key already held, for a caller holding more
// than one (/pair/increment); unlocks the guard.
void Api::write_held(KeyGuard& guard, std::string_view key, TraceRecord& r) const
{
    StepTicket no_gates;
    const bool kept = read_modify_write(
        *ctx_.store, ctx_.metrics, guard, key, Delays{}, r,
        [&](TraceOutcome o) { record(r, key, o); }, no_gates, fencing());
    record(r, key, kept ? TraceOutcome::written : TraceOutcome::lost_lock);
    if (!kept) throw LockLostError(lost_message(key, "increment", true));
    if (ctx_.scoreboard)
        ctx_.scoreboard->totals().increments.fetch_add(1, std::memory_order_relaxed);
}

// The trace record and the lock-time histograms of one increment, whatever its outcome.
void Api::record(TraceRecord& r, std::string_view key, TraceOutcome outcome) const noexcept
{
    if (ctx_.metrics) {
        if (r.held() || outcome == TraceOutcome::timed_out)
            ctx_.metrics->wait().observe((r.held() ? r.acquired_ns : r.released_ns) -
                                         r.requested_ns);
        if (r.held()) ctx_.metrics->hold().observe(r.released_ns - r.acquired_ns);
    }
    if (!ctx_.trace) return;
    r.outcome = outcome;
    r.pid = current_pid();
    r.tid = current_tid();
    r.set_key(key);
    ctx_.trace->record(r);
}

Response Api::timed_out(std::string_view key, int timeout_ms) const
{
    if (ctx_.scoreboard)
        ctx_.scoreboard->totals().lock_timeouts.fetch_add(1, std::memory_order_relaxed);
    const pid_t owner = ctx_.table->owner(key);
    return json_response(
        503, Json{{"error", fmt::format("timed out after {} ms waiting for the lock on '{}'",
                                        timeout_ms, key)},
                  {"owner_pid", owner}});
}

Response Api::read(std::string_view key) const
{
    return json_response(200, Json{{"key", key}, {"value", ctx_.store->read(key)}});
}

// reset: traced too, so the analysis of the key's story knows its file went back to 0.
Response Api::reset(std::string_view key) const
{
    TraceRecord r;
    r.requested_ns = monotonic_ns();
    KeyGuard guard = ctx_.table->lock(key);
    r.acquired_ns = monotonic_ns();
    r.recovered_from = guard.recovered_from();
    if (ctx_.trace) r.read = ctx_.store->read(key);
    if (!guard.still_held()) throw LockLostError(lost_message(key, "reset", false));
    // Fenced like an increment: a reset from a holder whose lock was taken over is refused, and
    // every write of a fenced directory advances its generation (counter_store.h).
    if (fencing())
        ctx_.store->fenced_write(key, guard.token(), 0);
    else
        ctx_.store->write(key, 0);
    r.unlock_ns = monotonic_ns();
    const bool kept = guard.unlock();
    r.released_ns = monotonic_ns();
    record(r, key, TraceOutcome::reset);
    if (!kept) throw LockLostError(lost_message(key, "reset", true));
    return json_response(200, Json{{"key", key}, {"value", 0}});
}

Response Api::index() const
{
    Json endpoints = Json::array(
        {"POST /counter/{key}/increment?hold_ms=N&timeout_ms=M&write_delay_ms=D  add one under "
         "the key's lock",
         "GET /counter/{key}  read a counter", "DELETE /counter/{key}  reset a counter to 0",
         "GET /locks  the lock table (postgres, redis: who holds, from the lock server)",
         "GET /workers  the workers", "GET /metrics  Prometheus text",
         "GET /trace?key=K&since=SEQ&limit=N&format=chrome  the critical sections traced",
         "GET /analysis?key=K  overlaps and lost updates of a key, explained",
         "POST /pair/increment?first=A&second=B&hold_ms=H&timeout_ms=T&ordered=0|1  two keys, "
         "A then B (ordered=1: in byte order): the classic deadlock",
         "POST /control/kill?key=K|pid=P  SIGKILL the worker holding K, or worker P (token)",
         "POST /control/config?mode=M&preload=B&workers=N&threads=T  reload as on HUP (token)",
         "GET /step  the increments parked at step gates",
         "POST /control/step?key=K&on=1|0  step mode for key K (token)",
         "POST /control/step?request=ID  move a parked increment one point on (token)",
         "POST /control/step/replay?key=K&schedule=S  run schedule S on real workers (token)",
         "GET /dashboard  the live classroom page: lanes, lost updates, controls",
         "GET /healthz  liveness"});
    return json_response(200, Json{{"name", "forklock"},
                                   {"lock_mode", to_string(ctx_.table->mode())},
                                   {"explain", explain(ctx_.table->mode())},
                                   {"pid", ctx_.pid},
                                   {"endpoints", endpoints}});
}

} // namespace forklock
