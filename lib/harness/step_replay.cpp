#include "harness/step_replay.h"

#include <future>
#include <sstream>

#include <fmt/format.h>

#include "harness/wait.h"

namespace forklock::harness {
namespace {

using nlohmann::json;

constexpr const char* kVerbs[] = {"lock", "read", "write", "unlock", "done"};

int verb_index(const std::string& verb)
{
    for (int i = 0; i < 5; ++i)
        if (verb == kVerbs[i]) return i;
    throw HttpError(fmt::format("'{}' is not a step: use lock, read, write, unlock or done", verb));
}

struct Move {
    std::string name; // "A" or "B"
    int until = 0;    // parked past this point: point_index > until, or finished
};

std::vector<Move> parse(const std::string& schedule)
{
    std::vector<Move> moves;
    std::istringstream in(schedule);
    for (std::string item; in >> item;) {
        const auto colon = item.find(':');
        const std::string name = item.substr(0, colon);
        if (colon == std::string::npos || (name != "A" && name != "B"))
            throw HttpError(fmt::format("'{}' is not NAME:STEP with NAME A or B", item));
        moves.push_back({name, verb_index(item.substr(colon + 1))});
    }
    if (moves.empty()) throw HttpError("the schedule is empty");
    return moves;
}

// The request `name` once it is parked, or waits inside lock() for a known holder; null once it
// has finished. Inside lock() with no holder known, a request is on its way to a free lock (a
// busy machine can catch it there), so it is looked at again; after 10 s it counts as waiting.
json settled(const ServerProcess& server, const std::string& name, bool must_exist = false)
{
    json found;
    const bool ok = wait_until([&] {
        const json view = get_parked_json(server, "/step");
        found = nullptr;
        for (const auto& r : view["requests"])
            if (r["name"] == name) found = r;
        if (found.is_null()) return !must_exist;
        if (found["state"] == "waiting for the lock") return !found["waiting_for_pid"].is_null();
        return found["state"] != "running";
    });
    if (!ok && (found.is_null() || found["state"] != "waiting for the lock"))
        throw HttpError(fmt::format("request {} did not settle", name));
    return found;
}

// Steps `name` until it has passed point `until`; false (and why) if it waits inside lock().
bool advance(const ServerProcess& server, const Move& m, std::string& why)
{
    for (json r = settled(server, m.name); !r.is_null(); r = settled(server, m.name)) {
        if (r["point_index"].get<int>() > m.until) return true;
        if (r["state"] == "waiting for the lock") {
            why = fmt::format("{}:{} could not run: {} waits for the lock held by pid {}", m.name,
                              kVerbs[m.until], m.name, r["waiting_for_pid"].dump());
            return false;
        }
        const auto answer = server.control(fmt::format("/control/step?request={}", r["id"].dump()));
        if (answer.status != 200) throw HttpError("a step failed: " + answer.body);
    }
    return true;
}

} // namespace

json get_parked_json(const ServerProcess& server, const std::string& target,
                     std::chrono::milliseconds timeout)
{
    json body;
    std::string last;
    const bool answered = wait_until(
        [&] {
            const HttpResponse answer =
                http_request(server.endpoint(), "GET", target, std::chrono::seconds(1));
            body = answer.json();
            if (answer.ok() && !body.is_discarded()) return true;
            last = fmt::format("status {} ({}) {}", answer.status, answer.error,
                               answer.body.substr(0, 200));
            return false;
        },
        timeout);
    if (!answered) throw HttpError(fmt::format("GET {}: {}", target, last));
    return body;
}

ReplayResult replay_schedule(const ServerProcess& server, const std::string& key,
                             const std::string& schedule)
{
    const auto moves = parse(schedule);
    const Endpoint to = server.endpoint();
    if (!http_request(to, "DELETE", "/counter/" + key).ok() ||
        !server.control(fmt::format("/control/step?key={}&on=1", key)).ok())
        throw HttpError("could not reset the key and turn step mode on");
    auto start = [&] {
        return std::async(std::launch::async, [to, key] {
            return http_request(to, "POST", "/counter/" + key + "/increment",
                                std::chrono::seconds(60));
        });
    };
    auto a = start();
    settled(server, "A", true); // parked before B starts: A is the first to arrive
    auto b = start();
    settled(server, "B", true);
    ReplayResult result;
    for (const auto& m : moves)
        if (std::string why; !advance(server, m, why)) result.blocked.push_back(why);
    // To the end, A first: a waiter goes on by itself once the other unlocks.
    for (int round = 0; round < 2; ++round)
        for (const char* name : {"A", "B"}) {
            std::string ignored;
            advance(server, {name, 4}, ignored);
        }
    result.statuses = {a.get().status, b.get().status};
    result.schedule = get_parked_json(server, "/step")["keys"][0]["schedule"];
    if (!server.control(fmt::format("/control/step?key={}&on=0", key)).ok())
        throw HttpError("could not turn step mode off");
    result.final_value = get_parked_json(server, "/counter/" + key)["value"];
    return result;
}

} // namespace forklock::harness
