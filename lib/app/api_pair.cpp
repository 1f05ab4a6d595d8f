// POST /pair/increment: two keys under two locks, the classic deadlock and its fix (one order).

#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/api.h"
#include "os/monotonic_clock.h"

namespace forklock {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kDefaultPairTimeoutMs = 3000;

std::string pair_key(const std::string& query, std::string_view name)
{
    auto key = query_string(query, name);
    if (!key) throw BadRequest(fmt::format("{}=KEY is required", name));
    if (auto problem = key_error(*key)) throw BadRequest(fmt::format("{}: {}", name, *problem));
    return *key;
}

// lock_traced: `key` within `timeout`, its record's times filled; an empty guard on timeout.
KeyGuard lock_traced(LockTable& table, const std::string& key, int timeout_ms, TraceRecord& r)
{
    r.requested_ns = monotonic_ns();
    KeyGuard guard = table.lock_for(key, std::chrono::milliseconds(timeout_ms));
    if (guard) {
        r.acquired_ns = monotonic_ns();
        r.recovered_from = guard.recovered_from();
    } else {
        r.released_ns = monotonic_ns();
    }
    return guard;
}

} // namespace

// pair: locks `first`, holds hold_ms, locks `second` within timeout_ms, then increments both
// (first's counter first). ordered=1 takes the two locks in byte order of the keys instead. A
// timeout writes nothing; the section that held a key without writing is traced as failed, so
// the trace shows who held what while the other waited.
Response Api::pair(const Request& req) const
{
    const std::string first = pair_key(req.query, "first");
    const std::string second = pair_key(req.query, "second");
    if (first == second) throw BadRequest("first and second must be two different keys");
    const int hold_ms = query_int(req.query, "hold_ms", 0, kMaxHoldMs).value_or(0);
    const int timeout_ms =
        query_int(req.query, "timeout_ms", 1, kMaxTimeoutMs).value_or(kDefaultPairTimeoutMs);
    const bool ordered = query_int(req.query, "ordered", 0, 1).value_or(0) == 1;
    const bool swap = ordered && second < first;
    const std::string& a = swap ? second : first;
    const std::string& b = swap ? first : second;

    TraceRecord ra, rb;
    KeyGuard ga = lock_traced(*ctx_.table, a, timeout_ms, ra);
    if (!ga) {
        record(ra, a, TraceOutcome::timed_out);
        return json_error(503, fmt::format("timed out after {} ms waiting for {} (holding "
                                           "nothing yet): another request holds it",
                                           timeout_ms, a));
    }
    if (hold_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
    KeyGuard gb = lock_traced(*ctx_.table, b, timeout_ms, rb);
    if (!gb) {
        record(rb, b, TraceOutcome::timed_out);
        ra.unlock_ns = monotonic_ns();
        ga.unlock();
        ra.released_ns = monotonic_ns();
        record(ra, a, TraceOutcome::failed);
        if (ctx_.scoreboard)
            ctx_.scoreboard->totals().lock_timeouts.fetch_add(1, std::memory_order_relaxed);
        return json_error(
            503, fmt::format("timed out after {} ms waiting for {} while holding {}: a deadlock "
                             "if another request holds {} and waits for {}; nothing was written "
                             "(lock the keys in one order: ordered=1)",
                             timeout_ms, b, a, b, a));
    }
    TraceRecord& r_first = swap ? rb : ra;
    TraceRecord& r_second = swap ? ra : rb;
    write_held(swap ? gb : ga, first, r_first);
    write_held(swap ? ga : gb, second, r_second);
    return {200,
            "application/json",
            Json{{"first", {{"key", first}, {"value", r_first.wrote}}},
                 {"second", {{"key", second}, {"value", r_second.wrote}}},
                 {"pid", ctx_.pid},
                 {"lock_mode", to_string(ctx_.table->mode())},
                 {"ordered", ordered}}
                    .dump() +
                "\n",
            {}};
}

} // namespace forklock
