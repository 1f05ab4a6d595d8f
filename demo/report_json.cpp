#include "report.h"

// The demo's JSON document (--json): every measured field of every row, with its prediction.

namespace forklock::demo {

nlohmann::json config_json(const ServerConfig& config)
{
    return {{"mode", to_string(config.mode)},
            {"preload", config.preload},
            {"workers", config.workers},
            {"threads", config.threads},
            {"lock_recovery", config.lock_recovery},
            {"lock_name", config.lock_name},
            {"lock_share", config.lock_share},
            {"lock_url", config.lock_url},
            {"lease_ms", config.lease_ms},
            {"fencing", config.fencing}};
}

namespace {

nlohmann::json race_json(const RaceRow& row)
{
    nlohmann::json out = config_json(row.config);
    out.update({{"sent", row.load.sent},
                {"committed", row.load.ok},
                {"errors", row.load.errors},
                {"final", row.final},
                {"lost", row.load.ok - row.final},
                {"worker_pids", std::vector<pid_t>(row.load.pids.begin(), row.load.pids.end())},
                {"duplicate_values", row.load.duplicate_values},
                {"waited", row.load.waited},
                {"overlaps", row.witness.overlaps},
                {"trace_lost", row.witness.lost},
                {"trace_increments", row.witness.increments},
                {"examples", row.witness.examples},
                {"trace_error", row.trace_error},
                {"predicted", to_string(predict_race(row.config))},
                {"verdict", to_string(row.judgement.observed)},
                {"status", to_string(row.judgement.status)},
                {"as_predicted", row.judgement.status == RowStatus::as_predicted},
                {"why", why_race(row.config)},
                {"note", row.judgement.note},
                {"seconds", row.seconds}});
    return out;
}

nlohmann::json two_servers_json(const TwoServerRow& row)
{
    nlohmann::json out = config_json(row.config);
    out.update({{"sent", row.a.sent + row.b.sent},
                {"committed", row.a.ok + row.b.ok},
                {"errors", row.a.errors + row.b.errors},
                {"committed_by_a", row.a.ok},
                {"committed_by_b", row.b.ok},
                {"final", row.final},
                {"lost", row.a.ok + row.b.ok - row.final},
                {"waited", row.a.waited + row.b.waited},
                {"predicted", to_string(predict_two_servers(row.config))},
                {"verdict", to_string(row.judgement.observed)},
                {"status", to_string(row.judgement.status)},
                {"as_predicted", row.judgement.status == RowStatus::as_predicted},
                {"why", why_two_servers(row.config)},
                {"note", row.judgement.note},
                {"seconds", row.seconds}});
    return out;
}

} // namespace

nlohmann::json pause_json(const PauseRow& row)
{
    nlohmann::json out = config_json(row.config);
    out.update({{"paused_pid", row.paused_pid},
                {"paused_holding", row.paused_holding},
                {"paused_ms", row.paused_ms},
                {"probe_timeout_ms", row.probe_timeout_ms},
                {"probes", row.probes},
                {"refused", row.refused},
                {"refused_past_hold", row.refused_past_hold},
                {"admitted", row.admitted},
                {"other_replies", row.other_replies},
                {"holder_finished", row.holder_finished},
                {"holder_finished_after_ms", row.holder_finished_after_ms},
                {"freed_after", row.freed_after},
                {"freed_after_ms", row.freed_after_ms},
                {"committed", row.committed},
                {"final", row.final},
                {"predicted", to_string(predict_pause(row.config))},
                {"verdict", to_string(row.observed)},
                {"status", to_string(row.status)},
                {"as_predicted", row.status == RowStatus::as_predicted},
                {"why", why_pause(row.config)},
                {"note", row.note},
                {"seconds", row.seconds}});
    return out;
}

nlohmann::json crash_json(const CrashRow& row)
{
    nlohmann::json out = config_json(row.config);
    out.update({{"killed_pid", row.killed_pid},
                {"freed", row.freed},
                {"freed_after_ms", row.freed_after_ms},
                {"recovered_from", row.recovered_from},
                {"stuck_503", row.stuck_503},
                {"stuck_owner_pid", row.stuck_owner},
                {"probe_timeout_ms", row.probe_timeout_ms},
                {"new_pid", row.new_pid},
                {"restarts_before", row.restarts_before},
                {"restarts_after", row.restarts_after},
                {"committed", row.committed},
                {"final", row.final},
                {"predicted", to_string(predict_crash(row.config))},
                {"verdict", to_string(row.observed)},
                {"status", to_string(row.status)},
                {"as_predicted", row.status == RowStatus::as_predicted},
                {"summary", describe_recovery(row)},
                {"why", why_crash(row.config)},
                {"note", row.note},
                {"seconds", row.seconds}});
    return out;
}

nlohmann::json chrome_trace(const std::vector<RaceRow>& rows)
{
    nlohmann::json events = nlohmann::json::array();
    for (const auto& row : rows) {
        for (auto event : row.chrome) {
            // Name each worker's track after its row: the rows' servers ran one after another.
            if (event.value("name", "") == "process_name")
                event["args"]["name"] =
                    describe(row.config) + ": " + event["args"].value("name", "");
            events.push_back(std::move(event));
        }
    }
    return {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
}

nlohmann::json to_json(const DemoResults& results)
{
    nlohmann::json race = nlohmann::json::array();
    for (const auto& row : results.race) race.push_back(race_json(row));
    nlohmann::json crash = nlohmann::json::array();
    for (const auto& row : results.crash) crash.push_back(crash_json(row));
    nlohmann::json two_servers = nlohmann::json::array();
    for (const auto& row : results.two_servers) two_servers.push_back(two_servers_json(row));
    nlohmann::json postgres_crash = nlohmann::json::array();
    for (const auto& row : results.postgres_crash) postgres_crash.push_back(crash_json(row));
    nlohmann::json postgres_pause = nlohmann::json::array();
    for (const auto& row : results.postgres_pause) postgres_pause.push_back(pause_json(row));
    return {{"sizes",
             {{"requests", results.sizes.requests},
              {"concurrency", results.sizes.concurrency},
              {"hold_ms", results.sizes.hold_ms},
              {"workers", results.sizes.workers},
              {"threads", results.sizes.threads}}},
            {"race", race},
            {"crash", crash},
            {"two_servers", two_servers},
            {"postgres_crash", postgres_crash},
            {"postgres_pause", postgres_pause},
            {"postgres_skipped", results.postgres_skipped},
            {"seed", seed_json(results.seed)},
            {"leases", leases_json(results.leases)},
            {"seconds", results.seconds},
            {"all_as_predicted", all_as_predicted(results)}};
}

} // namespace forklock::demo
