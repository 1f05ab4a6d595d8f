#include "server_api.h"

#include <fmt/format.h>

#include "interrupt.h"

namespace forklock::demo {
namespace {

template <typename T>
T field_or(const nlohmann::json& object, const char* name, T fallback)
{
    if (!object.is_object()) return fallback;
    const auto it = object.find(name);
    return it != object.end() && it->is_number() ? it->get<T>() : fallback;
}

} // namespace

IncrementReply ServerApi::increment(const std::string& key, int hold_ms, int timeout_ms,
                                    Clock::duration http_timeout, int write_delay_ms) const
{
    std::string target = fmt::format("/counter/{}/increment?hold_ms={}", key, hold_ms);
    if (timeout_ms >= 0) target += fmt::format("&timeout_ms={}", timeout_ms);
    if (write_delay_ms > 0) target += fmt::format("&write_delay_ms={}", write_delay_ms);
    const harness::HttpResponse response = request("POST", target, http_timeout);
    const nlohmann::json body = response.json();
    IncrementReply reply;
    reply.status = response.status;
    reply.value = field_or<long>(body, "value", 0);
    reply.pid = field_or<pid_t>(body, "pid", 0);
    reply.waited_ms = field_or<double>(body, "waited_ms", 0.0);
    reply.recovered_from = field_or<pid_t>(body, "recovered_from", 0);
    reply.owner_pid = field_or<pid_t>(body, "owner_pid", 0);
    reply.token = field_or<std::uint64_t>(body, "token", 0);
    reply.highest_token = field_or<std::uint64_t>(body, "highest_token", 0);
    reply.written = response.status == 200 ||
                    (body.is_object() && body.value("written", false) == true);
    return reply;
}

long ServerApi::counter(const std::string& key) const
{
    const nlohmann::json body = get_json("/counter/" + key);
    if (!body.contains("value")) throw HttpError("GET /counter/" + key + ": no value in reply");
    return body["value"].get<long>();
}

pid_t ServerApi::lock_owner(const std::string& key) const
{
    const nlohmann::json body = get_json("/locks");
    // The table's slots (keys), else the lock server's view (holders: postgres, redis).
    for (const char* list : {"keys", "holders"}) {
        if (!body.contains(list) || !body[list].is_array()) continue;
        for (const auto& entry : body[list]) {
            if (entry.value("key", std::string()) != key) continue;
            if (const auto pid = field_or<pid_t>(entry, "owner_pid", 0); pid > 0) return pid;
            if (entry.value("state", std::string()) == "granted")
                return field_or<pid_t>(entry, "pid", 0);
        }
    }
    return 0;
}

WorkersSnapshot ServerApi::workers() const
{
    const nlohmann::json body = get_json("/workers");
    WorkersSnapshot snapshot;
    snapshot.master_pid = field_or<pid_t>(body, "master_pid", 0);
    snapshot.restarts = field_or<int>(body, "restarts", 0);
    if (body.contains("workers") && body["workers"].is_array()) {
        for (const auto& worker : body["workers"])
            snapshot.pids.push_back(field_or<pid_t>(worker, "pid", 0));
    }
    return snapshot;
}

TraceWitness ServerApi::analysis(const std::string& key) const
{
    const nlohmann::json body = get_json("/analysis?key=" + key);
    if (!body.contains("lost")) throw HttpError("GET /analysis?key=" + key + ": no lost in reply");
    TraceWitness witness;
    witness.increments = field_or<long>(body, "increments", 0);
    witness.overlaps = field_or<long>(body, "overlaps", 0);
    witness.lost = field_or<long>(body, "lost", 0);
    witness.lost_min = field_or<long>(body, "lost_min", witness.lost);
    witness.lost_max = field_or<long>(body, "lost_max", witness.lost);
    if (body.contains("examples") && body["examples"].is_array())
        for (const auto& example : body["examples"])
            witness.examples.push_back(example.value("text", std::string()));
    return witness;
}

nlohmann::json ServerApi::chrome_trace() const
{
    return get_json("/trace?format=chrome&limit=65536");
}

harness::HttpResponse ServerApi::request(const std::string& method, const std::string& target,
                                         Clock::duration timeout) const
{
    harness::HttpResponse response =
        harness::http_request(server_, method, target, timeout, throw_if_interrupted);
    if (response.status == 0)
        throw HttpError(fmt::format("{} {}: {}", method, target, response.error));
    return response;
}

nlohmann::json ServerApi::get_json(const std::string& target) const
{
    const harness::HttpResponse response = request("GET", target, query_timeout_);
    if (!response.ok())
        throw HttpError(fmt::format("GET {}: HTTP {}: {}", target, response.status, response.body));
    nlohmann::json body = response.json();
    if (body.is_discarded()) throw HttpError(fmt::format("GET {}: reply is not JSON", target));
    return body;
}

} // namespace forklock::demo
