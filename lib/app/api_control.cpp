// The dashboard's controls: POST /control/kill and POST /control/config.

#include "app/api_control.h"
#include "app/client_error.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/json_response.h"

namespace forklock {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kHowToken =
    "send the token the server logged at start (--dashboard-token) in the X-Forklock-Token "
    "header";

// Why the token given is not accepted, for the 403.
std::string token_problem(const Request& r)
{
    if (!r.token.empty()) return "the X-Forklock-Token header holds a wrong token";
    if (query_string(r.query, "token"))
        return "the token was given in the URL (?token=), where the controls do not take it "
               "(URLs end up in logs and history)";
    return "no token was given";
}

} // namespace

bool tokens_equal(std::string_view given, std::string_view expected) noexcept
{
    if (expected.empty()) return false;
    unsigned diff = given.size() != expected.size();
    for (std::size_t i = 0; i < expected.size(); ++i)
        diff |= static_cast<unsigned char>(i < given.size() ? given[i] : 0) ^
                static_cast<unsigned char>(expected[i]);
    return diff == 0;
}

std::optional<std::string> control_refusal(const Request& r, const Options* o)
{
    if (o == nullptr) return "this process has no dashboard options: the controls are off";
    if (o->dashboard_controls == DashboardControls::off)
        return "the controls are off (--dashboard-controls off); restart the server with "
               "--dashboard-controls loopback or token to use them";
    if (tokens_equal(r.token, o->dashboard_token)) return std::nullopt;
    const char* page = o->dashboard_controls == DashboardControls::loopback
                           ? "the dashboard opened from this machine carries it"
                           : "open the dashboard with ?token=TOKEN";
    return fmt::format("the controls need the token (--dashboard-controls {}) and {}: {} ({})",
                       to_string(o->dashboard_controls), token_problem(r), kHowToken, page);
}

std::optional<bool> parse_bool(std::string_view text)
{
    if (text == "true" || text == "1") return true;
    if (text == "false" || text == "0") return false;
    return std::nullopt;
}

Response Api::control(const Request& r) const
{
    if (r.method != "POST") {
        Response refused =
            json_error(405, fmt::format("method {} is not allowed here; use POST", r.method));
        refused.headers.emplace_back("Allow", "POST");
        return refused;
    }
    if (r.path == "/pair/increment") return pair(r);
    if (r.path != "/control/kill" && r.path != "/control/config" && r.path != "/control/step" &&
        r.path != "/control/step/replay")
        return json_error(404, fmt::format("no such path: {}", r.path));
    if (auto why = control_refusal(r, ctx_.options)) return json_error(403, *why);
    if (ctx_.scoreboard == nullptr) return json_error(503, "no scoreboard in this process");
    if (r.path == "/control/step") return step_control(r);
    if (r.path == "/control/step/replay") return step_replay(r);
    return r.path == "/control/kill" ? kill(r) : config(r);
}

// kill: SIGKILL the holder of ?key=K (LockTable::owner) or worker ?pid=P; only a live worker of
// this server, never the master, a stranger, or the worker answering (it could not answer).
Response Api::kill(const Request& r) const
{
    const auto key = query_string(r.query, "key");
    const auto pid = query_int(r.query, "pid", 1, INT_MAX);
    if (key.has_value() == pid.has_value())
        throw BadRequest("give one of key=K (kill the worker holding K) or pid=P");
    if (pid) return kill_pid(*pid, "");
    if (auto problem = key_error(*key)) return json_error(400, *problem);
    const pid_t owner = ctx_.table->owner(*key);
    if (owner == 0 && !ctx_.table->stats().shared)
        return json_error(409, fmt::format("this worker's lock table ({} mode without preload) "
                                           "is its own and no thread here holds '{}': it cannot "
                                           "see other workers' holders; kill by ?pid=",
                                           to_string(ctx_.table->mode()), *key));
    if (owner == 0)
        return json_error(409, fmt::format("no worker holds '{}' now: nothing to kill (hold it "
                                           "with an increment's hold_ms first)",
                                           *key));
    return kill_pid(owner, *key);
}

Response Api::kill_pid(pid_t pid, const std::string& key) const
{
    if (pid == ctx_.pid)
        return json_error(409, fmt::format("worker {}{} is the worker answering this request; "
                                           "it will not kill itself (try again: another worker "
                                           "may answer)",
                                           pid, key.empty() ? "" : " holding '" + key + "'"));
    const auto workers = ctx_.scoreboard->snapshot();
    const bool ours = std::any_of(workers.begin(), workers.end(),
                                  [pid](const WorkerSnapshot& w) { return w.pid == pid; });
    if (!ours && key.empty())
        return json_error(404, fmt::format("pid {} is not a live worker of this server", pid));
    if (!ours)
        return json_error(409, fmt::format("'{}' is held by pid {}, which is not a live worker "
                                           "of this server (dead and not yet recovered?)",
                                           key, pid));
    if (::kill(pid, SIGKILL) != 0)
        return json_error(errno == ESRCH ? 404 : 500,
                          fmt::format("kill({}, SIGKILL) failed: {}", pid, std::strerror(errno)));
    Json body{{"killed", pid}, {"key", key.empty() ? Json(nullptr) : Json(key)}};
    return json_response(200, body);
}

namespace {

// How long /control/config waits for the master's verdict: above PostgreSQL's connect timeout
// (PgSession::kConnectTimeoutS), which a probe of an unreachable host may take.
constexpr std::chrono::seconds kConfigVerdictWait{8};

// wait_until_deadline: polls `done` every few milliseconds; false if it never held in `limit`.
template <typename Done>
bool wait_until_deadline(Done done, std::chrono::milliseconds limit)
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

// parse_change: the query's fields, each checked with the command line's parse function and range.
ConfigChange parse_change(const Request& r)
{
    ConfigChange change;
    if (auto mode = query_string(r.query, "mode")) {
        change.mode = parse_lock_mode(*mode);
        if (!change.mode)
            throw BadRequest(fmt::format(
                "mode: '{}' is not one of none, thread, semaphore, mutex, flock, postgres, redis, "
                "process",
                *mode));
    }
    if (auto preload = query_string(r.query, "preload")) {
        change.preload = parse_bool(*preload);
        if (!change.preload) throw BadRequest("preload must be true or false");
    }
    change.workers = query_int(r.query, "workers", 1, static_cast<int>(kMaxWorkers));
    change.threads = query_int(r.query, "threads", 1, static_cast<int>(kMaxThreads));
    if (!change.mode && !change.preload && !change.workers && !change.threads)
        throw BadRequest("give at least one of mode, preload, workers, threads");
    return change;
}

} // namespace

// config: validated as the command line validates it, then left for the master, which checks
// what only it can (a PostgreSQL that is down, a named table it may not claim) and applies it on
// the HUP sent here (new lock table, new workers, the old ones drain). The answer waits for the
// master's verdict: 202 once applied, 409 with the master's reason once refused (the running
// configuration and its workers are kept), 202 with "pending" if the master has not decided
// within kConfigVerdictWait. postgres mode uses the server's --lock-url: a request carries no
// URL, since that would let whoever may control the server point it at any database; without
// one the switch is refused (403). The URL stays with the server through other modes.
Response Api::config(const Request& r) const
{
    const ConfigChange change = parse_change(r);
    Options check = *ctx_.options;
    check.lock_mode = change.mode.value_or(ctx_.scoreboard->requested_config().mode);
    if (facts(check.lock_mode).needs_url && check.lock_url.empty())
        return json_error(403, fmt::format("mode {0} needs the lock server this server was "
                                           "started with (--lock-url URL), and it has none: "
                                           "restart it with --lock-mode {0} --lock-url URL",
                                           to_string(check.lock_mode)));
    if (!facts(check.lock_mode).needs_url) check.lock_url.clear(); // kept, not used
    if (auto problem = config_error(check); !problem.empty()) throw BadRequest(problem);
    const ServerConfig next = ctx_.scoreboard->request_config(change);
    const pid_t master = ctx_.scoreboard->totals().master_pid.load();
    if (::kill(master, SIGHUP) != 0)
        return json_error(500,
                          fmt::format("kill({}, SIGHUP) failed: {}", master, std::strerror(errno)));
    const bool decided = wait_until_deadline(
        [&] { return ctx_.scoreboard->applied_config().generation >= next.generation; },
        kConfigVerdictWait);
    if (auto why = decided ? ctx_.scoreboard->config_refusal(next.generation) : std::nullopt)
        return json_error(409, fmt::format("configuration {} was refused and the running one is "
                                           "kept, with its workers: {}",
                                           next.generation, strip_directories(*why)));
    Json body{{"mode", to_string(next.mode)},
              {"preload", next.preload},
              {"workers", next.workers},
              {"threads", next.threads},
              {"generation", next.generation}};
    if (!decided) body["pending"] = true;
    return json_response(202, body);
}

} // namespace forklock
