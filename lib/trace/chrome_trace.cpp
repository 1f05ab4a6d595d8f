#include "trace/chrome_trace.h"

#include <set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace forklock {
namespace {

using Json = nlohmann::ordered_json;

double us(std::int64_t ns) { return static_cast<double>(ns) / 1e3; }

Json slice(const TraceRecord& r, std::string name, std::int64_t from, std::int64_t to)
{
    return Json{{"name", std::move(name)},
                {"cat", "lock"},
                {"ph", "X"},
                {"ts", us(from)},
                {"dur", us(to > from ? to - from : 0)},
                {"pid", r.pid},
                {"tid", r.tid},
                {"args",
                 {{"seq", r.seq},
                  {"read", r.read},
                  {"wrote", r.wrote},
                  {"token", r.token},
                  {"outcome", to_string(r.outcome)},
                  {"recovered_from", r.recovered_from}}}};
}

Json name_event(const char* what, int pid, int tid, std::string name)
{
    return Json{{"name", what},
                {"ph", "M"},
                {"pid", pid},
                {"tid", tid},
                {"args", {{"name", std::move(name)}}}};
}

} // namespace

std::string chrome_trace_json(const std::vector<TraceRecord>& records)
{
    Json events = Json::array();
    std::set<int> pids;
    std::set<std::pair<int, int>> threads;
    for (const auto& r : records) {
        if (pids.insert(r.pid).second)
            events.push_back(
                name_event("process_name", r.pid, r.pid, fmt::format("worker {}", r.pid)));
        if (threads.insert({r.pid, r.tid}).second)
            events.push_back(
                name_event("thread_name", r.pid, r.tid, fmt::format("thread {}", r.tid)));
        std::string key(r.key_view());
        std::int64_t waited_until = r.held() ? r.acquired_ns : r.released_ns;
        std::string wait =
            r.outcome == TraceOutcome::timed_out ? "wait " + key + " (timed out)" : "wait " + key;
        if (waited_until != 0)
            events.push_back(slice(r, std::move(wait), r.requested_ns, waited_until));
        if (r.held()) events.push_back(slice(r, "hold " + key, r.acquired_ns, r.released_ns));
    }
    return Json{{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}}.dump() + "\n";
}

} // namespace forklock
