// Step mode's routes: GET /step (a read), POST /control/step and POST /control/step/replay
// (controls: the token).
// The gates themselves are in step_board.h; docs/stepping.md is the lesson.

#include <charconv>
#include <climits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/api.h"
#include "app/api_control.h"
#include "app/json_response.h"
#include "app/step_board.h"
#include "app/step_replayer.h"

namespace forklock {
namespace {

using Json = nlohmann::ordered_json;

// How long a step waits for its request to reach the next gate before it answers.
constexpr std::chrono::milliseconds kStepSettle{2'000};

bool holds_lock(const ParkedRequest& r)
{
    return r.phase != StepPhase::in_lock && r.point >= StepPoint::holds &&
           r.point <= StepPoint::wrote;
}

// The pids of the parked requests of `key` that hold its lock: more than one means two
// critical sections at once (a lock that does not exclude across workers).
std::vector<pid_t> holders(const std::vector<ParkedRequest>& all, std::string_view key)
{
    std::vector<pid_t> out;
    for (const auto& r : all)
        if (r.key == key && holds_lock(r)) out.push_back(r.pid);
    return out;
}

const char* phase_name(StepPhase phase)
{
    switch (phase) {
    case StepPhase::parked: return "parked";
    case StepPhase::in_lock: return "waiting for the lock";
    case StepPhase::running: return "running";
    case StepPhase::free: break;
    }
    return "finished";
}

Json step_json(const LockTable& table, const ParkedRequest& r,
               const std::vector<ParkedRequest>& all)
{
    Json j{{"id", r.id},
           {"name", std::string(1, r.letter)},
           {"pid", r.pid},
           {"tid", r.tid},
           {"key", r.key},
           {"state", phase_name(r.phase)},
           {"point", to_string(r.point)},
           {"point_index", static_cast<int>(r.point)},
           {"read", r.read ? Json(*r.read) : Json(nullptr)}};
    if (r.phase == StepPhase::in_lock) {
        const auto held = holders(all, r.key);
        const pid_t owner = held.empty() ? table.owner(r.key) : held.front();
        j["waiting_for_pid"] = owner == 0 ? Json(nullptr) : Json(owner);
    }
    return j;
}

// What a replay did, told in one line: its recorded schedule, the file's value, what was lost.
std::string replay_text(const ReplayOutcome& out, std::uint64_t value, std::size_t acknowledged)
{
    std::string text = fmt::format("{} -> the file says {} after {} acknowledged increment{}",
                                   out.recorded, value, acknowledged, acknowledged == 1 ? "" : "s");
    if (acknowledged > value) {
        const auto lost = acknowledged - value;
        text += lost == 1 ? ": one update lost" : fmt::format(": {} updates lost", lost);
    }
    for (const auto& b : out.blocked) text += fmt::format("; {} could not run: {}", b.step, b.why);
    return text;
}

} // namespace

// GET /step: the keys in step mode (file value, lock holders, schedule so far) and every
// request inside step mode.
Response Api::steps(const Request&) const
{
    if (ctx_.scoreboard == nullptr) return json_error(503, "no scoreboard in this process");
    StepBoard board = ctx_.scoreboard->steps();
    const auto all = board.requests();
    Json keys = Json::array(), requests = Json::array();
    for (const auto& key : board.keys()) {
        const auto held = holders(all, key);
        const pid_t owner = held.empty() ? ctx_.table->owner(key) : held.front();
        keys.push_back(Json{{"key", key},
                            {"value", ctx_.store->read(key)},
                            {"owner_pid", owner == 0 ? Json(nullptr) : Json(owner)},
                            {"holders", held},
                            {"schedule", board.schedule(key)}});
    }
    for (const auto& r : all) requests.push_back(step_json(*ctx_.table, r, all));
    return json_response(200, Json{{"keys", keys}, {"requests", requests}});
}

// POST /control/step: key=K&on=1|0 turns step mode on or off; request=ID (or pid=P, with tid=T
// when the worker has several parked) moves one parked increment past its point.
Response Api::step_control(const Request& r) const
{
    StepBoard board = ctx_.scoreboard->steps();
    const auto key = query_string(r.query, "key");
    if (key)
        if (auto problem = key_error(*key)) throw BadRequest(*problem);
    if (auto on = query_string(r.query, "on")) {
        const auto wanted = parse_bool(*on);
        if (!wanted) throw BadRequest("on must be 1 or 0");
        if (!key) throw BadRequest("give the key to turn step mode on or off for: key=K");
        if (*wanted && !board.turn_on(*key))
            return json_error(409, fmt::format("{} keys are in step mode already; turn one off "
                                               "first",
                                               kStepKeys));
        if (!*wanted && !board.turn_off(*key))
            throw BadRequest(fmt::format("key '{}' is not in step mode", *key));
        return json_response(200, Json{{"key", *key}, {"on", *wanted}});
    }
    if (key && !board.is_on(*key))
        throw BadRequest(fmt::format("key '{}' is not in step mode (turn it on with on=1)", *key));
    return step_one(board, r);
}

Response Api::step_one(StepBoard& board, const Request& r) const
{
    const auto id = parked_id(board, r);
    std::optional<StepPoint> at;
    if (auto index = query_int(r.query, "at", 0, static_cast<int>(kStepPoints) - 1))
        at = static_cast<StepPoint>(*index);
    const auto result = board.step(id, kStepSettle, at);
    const auto all = board.requests();
    using Status = StepResult::Status;
    switch (result.status) {
    case Status::no_such_request:
        throw BadRequest(fmt::format("request {} is not in step mode (finished, or never "
                                     "parked)",
                                     id));
    case Status::not_parked:
        throw BadRequest(fmt::format("request {} is not parked at a gate now ({}); wait until "
                                     "GET /step shows it parked",
                                     id, result.after ? phase_name(result.after->phase) : "gone"));
    case Status::in_lock: {
        Json body = step_json(*ctx_.table, *result.after, all);
        body["error"] = fmt::format("request {} ({}, pid {}) is inside lock(), waiting for the "
                                    "lock held by pid {}: it cannot be stepped past the lock; "
                                    "step the holder to its unlock",
                                    id, result.after->letter, result.after->pid,
                                    body["waiting_for_pid"].dump());
        return json_response(409, body);
    }
    case Status::elsewhere: {
        Json body = step_json(*ctx_.table, *result.after, all);
        body["error"] = fmt::format("request {} is at '{}', not at '{}': it was stepped already",
                                    id, to_string(result.after->point), to_string(*at));
        return json_response(409, body);
    }
    case Status::stepped: break;
    }
    if (!result.after) return json_response(200, Json{{"id", id}, {"state", "finished"}});
    return json_response(200, step_json(*ctx_.table, *result.after, all));
}

// The request a step names: request=ID, or pid=P (and tid=T) of a worker with one parked.
std::uint64_t Api::parked_id(StepBoard& board, const Request& r) const
{
    if (auto id = query_string(r.query, "request")) {
        std::uint64_t value = 0;
        auto [end, ec] = std::from_chars(id->data(), id->data() + id->size(), value);
        if (id->empty() || ec != std::errc() || end != id->data() + id->size() || value == 0)
            throw BadRequest("request must be a positive integer (an id from GET /step)");
        return value;
    }
    const auto pid = query_int(r.query, "pid", 1, INT_MAX);
    const auto tid = query_int(r.query, "tid", 1, INT_MAX);
    if (!pid) throw BadRequest("give request=ID (from GET /step), pid=P, or key=K&on=1|0");
    std::vector<std::uint64_t> ids;
    for (const auto& p : board.requests())
        if (p.pid == *pid && (!tid || p.tid == *tid)) ids.push_back(p.id);
    if (ids.empty()) throw BadRequest(fmt::format("no request of pid {} is in step mode", *pid));
    if (ids.size() > 1)
        throw BadRequest(fmt::format("pid {} has {} requests in step mode: name one with tid=T "
                                     "or request=ID",
                                     *pid, ids.size()));
    return ids.front();
}

// POST /control/step/replay?key=K&schedule=S (or S in the body): the schedule on real workers
// (step_replayer.h), from a key reset to 0; answers the outcome and the file's final value.
Response Api::step_replay(const Request& r) const
{
    const std::string key = query_string(r.query, "key").value_or("replay");
    if (auto problem = key_error(key)) throw BadRequest(*problem);
    std::vector<ReplayMove> moves;
    try {
        moves = parse_step_schedule(query_string(r.query, "schedule").value_or(r.body));
    } catch (const std::invalid_argument& e) {
        throw BadRequest(fmt::format("malformed schedule: {}", e.what()));
    }
    StepBoard board = ctx_.scoreboard->steps();
    if (board.is_on(key))
        return json_error(409, fmt::format("key '{}' is in step mode already: turn it off, or "
                                           "replay on another key",
                                           key));
    if (ctx_.listen_fd < 0) return json_error(503, "this process has no listener to replay on");
    reset(key);
    ReplayOutcome out;
    try {
        out = StepReplayer(board, key, send_to_listener(ctx_.listen_fd, std::chrono::seconds(30)))
                  .run(moves);
    } catch (const ReplayError& e) {
        return json_error(503, fmt::format("replay failed: {}", e.what()));
    }
    const std::uint64_t value = ctx_.store->read(key);
    Json answers = Json::array(), blocked = Json::array();
    std::size_t acknowledged = 0;
    for (std::size_t i = 0; i < out.answers.size(); ++i) {
        const auto body = Json::parse(out.answers[i].body, nullptr, false);
        acknowledged += out.answers[i].status == 200;
        answers.push_back(Json{{"name", std::string(1, static_cast<char>('A' + i))},
                               {"status", out.answers[i].status},
                               {"value", body.is_object() ? body.value("value", Json()) : Json()}});
    }
    for (const auto& b : out.blocked) blocked.push_back(Json{{"step", b.step}, {"why", b.why}});
    std::string given;
    for (const auto& m : moves) given += (given.empty() ? "" : " ") + m.text();
    return json_response(200, Json{{"key", key},
                                   {"schedule", given},
                                   {"recorded", out.recorded},
                                   {"value", value},
                                   {"acknowledged", acknowledged},
                                   {"answers", answers},
                                   {"blocked", blocked},
                                   {"text", replay_text(out, value, acknowledged)}});
}

} // namespace forklock
