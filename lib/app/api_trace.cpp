// The trace endpoints of the API: GET /trace (JSON or Chrome Trace Event format) and
// GET /analysis. Both read the shared ring while workers write to it: a read copies records and
// never blocks a writer (trace/trace_ring.h).

#include <charconv>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/api.h"
#include "trace/chrome_trace.h"
#include "trace/trace_analysis.h"

namespace forklock {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::size_t kDefaultLimit = 1000;

struct TraceQuery {
    std::optional<std::string> key;
    std::uint64_t since = 0;
    std::size_t limit = kDefaultLimit;
    bool chrome = false;
};

// The query's name=value pairs; a name not in `allowed`, or given twice, is a BadRequest.
std::map<std::string_view, std::string_view>
parameters(std::string_view query, std::initializer_list<std::string_view> allowed)
{
    std::map<std::string_view, std::string_view> out;
    while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        auto name = pair.substr(0, eq);
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
            throw BadRequest(fmt::format("unknown parameter '{}'", name));
        if (!out.emplace(name, eq == std::string_view::npos ? "" : pair.substr(eq + 1)).second)
            throw BadRequest(fmt::format("parameter '{}' is given twice", name));
    }
    return out;
}

std::uint64_t parse_unsigned(std::string_view text, std::string_view name, std::uint64_t low,
                             std::uint64_t high)
{
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < low ||
        value > high)
        throw BadRequest(fmt::format("{} must be an integer in {}..{}", name, low, high));
    return value;
}

TraceQuery parse_trace_query(const std::string& query, std::size_t capacity)
{
    TraceQuery q;
    q.limit = std::min(kDefaultLimit, capacity);
    for (auto [name, value] : parameters(query, {"key", "since", "limit", "format"})) {
        if (name == "key") {
            if (auto problem = key_error(value)) throw BadRequest(*problem);
            q.key = std::string(value);
        } else if (name == "since") {
            q.since = parse_unsigned(value, "since", 0, std::numeric_limits<std::int64_t>::max());
        } else if (name == "limit") {
            q.limit = static_cast<std::size_t>(parse_unsigned(value, "limit", 1, capacity));
        } else if (value == "chrome" || value == "json") {
            q.chrome = value == "chrome";
        } else {
            throw BadRequest(fmt::format("format must be json or chrome, not '{}'", value));
        }
    }
    return q;
}

Json record_json(const TraceRecord& r)
{
    return Json{{"seq", r.seq},
                {"pid", r.pid},
                {"tid", r.tid},
                {"key", r.key_view()},
                {"requested_ns", r.requested_ns},
                {"acquired_ns", r.acquired_ns},
                {"unlock_ns", r.unlock_ns},
                {"released_ns", r.released_ns},
                {"read", r.read},
                {"wrote", r.wrote},
                {"token", r.token},
                {"recovered_from", r.recovered_from},
                {"outcome", to_string(r.outcome)}};
}

Response json_ok(const Json& body) { return {200, "application/json", body.dump() + "\n", {}}; }

// 404, not 503: nothing will ever be there in this run, retrying is pointless.
Response tracing_off() { return json_error(404, "tracing is off (--no-trace)"); }

} // namespace

Response Api::trace(const Request& request) const
{
    if (ctx_.trace == nullptr) return tracing_off();
    TraceQuery q = parse_trace_query(request.query, ctx_.trace->capacity());
    TraceRead got = ctx_.trace->read(q.since, q.limit, q.key);
    if (q.chrome) return {200, "application/json", chrome_trace_json(got.records), {}};
    Json records = Json::array();
    for (const auto& r : got.records) records.push_back(record_json(r));
    return json_ok(
        Json{{"records", std::move(records)}, {"next", got.next}, {"dropped", got.dropped}});
}

Response Api::analysis(const Request& request) const
{
    if (ctx_.trace == nullptr) return tracing_off();
    auto params = parameters(request.query, {"key"});
    auto key = params.find("key");
    if (key == params.end()) throw BadRequest("key is required: /analysis?key=K");
    if (auto problem = key_error(key->second)) throw BadRequest(*problem);
    TraceRead got = ctx_.trace->read(0, ctx_.trace->capacity(), key->second);
    TraceAnalysis a = analyze_trace(got.records, key->second);
    Json examples = Json::array();
    for (const auto& e : a.examples) examples.push_back(Json{{"text", e.text}, {"seqs", e.seqs}});
    return json_ok(Json{{"key", a.key},
                        {"increments", a.increments},
                        {"overlaps", a.overlaps},
                        {"lost", a.lost},
                        {"lost_min", a.lost_min},
                        {"lost_max", a.lost_max},
                        {"examples", std::move(examples)},
                        {"times", "ms from each example's first read"},
                        {"records_dropped", got.dropped}});
}

} // namespace forklock
