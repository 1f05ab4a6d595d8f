// The seed's scene as text (its tables) and JSON; report.h declares them.
#include "report.h"

#include <fmt/format.h>

#include "report_cells.h"

namespace forklock::demo {
namespace {

std::string preload_cell(const SeedConfig& config)
{
    if (config.preload) return "yes";
    return config.lock_name.empty() ? "no" : "no, named";
}

std::string other_key_cell(const SeedRaceRow& row)
{
    if (!row.other_key_waited_ms) return "-";
    return fmt::format("waited {:.1f} ms", *row.other_key_waited_ms);
}

const char* scope_color(const SeedRaceRow& row)
{
    if (!row.judgement.scope) return nullptr;
    return row.judgement.scope == KeyScope::per_key ? kGreen : kRed;
}

std::string race_table(const std::vector<SeedRaceRow>& rows, bool color)
{
    Table table({"lock", "preload", "sent", "final", "lost", "pids", "waited", "other key",
                 "verdict", "theory"},
                {Align::left, Align::left, Align::right, Align::right, Align::right, Align::right,
                 Align::right, Align::left, Align::left, Align::left},
                color);
    for (const auto& row : rows) {
        const bool loses = row.judgement.race.observed == Verdict::loses_updates;
        std::string verdict(to_string(row.judgement.race.observed));
        if (row.judgement.scope) verdict += fmt::format(", {}", to_string(*row.judgement.scope));
        table.add_row({{std::string(to_string(row.config.lock))},
                       {preload_cell(row.config)},
                       {std::to_string(row.load.sent)},
                       {std::to_string(row.final)},
                       {std::to_string(row.load.ok - row.final)},
                       {std::to_string(row.load.pids.size())},
                       {std::to_string(row.load.waited)},
                       {other_key_cell(row), scope_color(row)},
                       {verdict, loses ? kRed : kGreen},
                       theory_cell(row.judgement.race.status)},
                      detail(why_seed_race(row.config), row.judgement.race.note));
    }
    return table.render();
}

std::string usable_again_cell(const CrashRow& row)
{
    if (row.freed) return fmt::format("after {:.1f} ms", row.freed_after_ms);
    if (row.stuck_503) return fmt::format("NO: still locked after {} s", row.probe_timeout_ms / 1000);
    return "unknown";
}

std::string crash_table(const std::vector<SeedCrashRow>& rows, bool color)
{
    Table table({"lock", "preload", "killed", "key usable again", "replaced by", "committed",
                 "final", "theory"},
                {Align::left, Align::left, Align::right, Align::left, Align::left, Align::right,
                 Align::right, Align::left},
                color);
    for (const auto& [seed, row] : rows) {
        std::string why(why_seed_crash(seed));
        if (row.recovered_from != 0)
            why += fmt::format(" (recovered from pid {})", row.recovered_from);
        table.add_row({{std::string(to_string(seed.lock))},
                       {preload_cell(seed)},
                       {std::to_string(row.killed_pid)},
                       {usable_again_cell(row), row.freed ? kGreen : kRed},
                       {row.new_pid ? std::to_string(row.new_pid) : "-"},
                       {std::to_string(row.committed)},
                       {std::to_string(row.final)},
                       theory_cell(row.status)},
                      detail(why, row.note));
    }
    return table.render();
}

} // namespace

std::string seed_title() { return fmt::format("Act {}, the seed: Python under gunicorn", kSeedAct); }

std::string format_seed(const SeedScene& scene, const RaceSizes& sizes, bool color)
{
    if (!scene.skipped.empty())
        return fmt::format("{}: skipped: {}.\n", paint(seed_title(), "1", color), scene.skipped);
    return fmt::format(
        "{}\nThe seed's app (demo/python/app.py: read the counter's file, sleep {} ms holding the "
        "lock, write value+1) under the real gunicorn -w {}; {} increments of one counter, {} at "
        "a time.\n'other key': how long an increment of a second key waited while a worker held "
        "the first for {} s.\n\n{}\nA worker holding the lock (for 10 s) is killed with SIGKILL; "
        "how soon does the next increment of that key succeed?\n\n{}",
        paint(seed_title(), "1", color), sizes.hold_ms, sizes.workers, sizes.requests,
        sizes.concurrency, 1, race_table(scene.race, color), crash_table(scene.crash, color));
}

namespace {

nlohmann::json seed_config_json(const SeedConfig& config)
{
    return {{"lock", to_string(config.lock)},
            {"preload", config.preload},
            {"workers", config.workers},
            {"lock_name", config.lock_name}};
}

nlohmann::json seed_race_json(const SeedRaceRow& row)
{
    const auto predicted_scope = predict_key_scope(row.config);
    nlohmann::json out = seed_config_json(row.config);
    out.update(
        {{"sent", row.load.sent},
         {"committed", row.load.ok},
         {"errors", row.load.errors},
         {"final", row.final},
         {"lost", row.load.ok - row.final},
         {"worker_pids", std::vector<pid_t>(row.load.pids.begin(), row.load.pids.end())},
         {"waited", row.load.waited},
         {"other_key_waited_ms", row.other_key_waited_ms ? nlohmann::json(*row.other_key_waited_ms)
                                                         : nlohmann::json()},
         {"predicted", to_string(predict_seed_race(row.config))},
         {"verdict", to_string(row.judgement.race.observed)},
         {"predicted_scope", predicted_scope ? to_string(*predicted_scope) : ""},
         {"scope", row.judgement.scope ? to_string(*row.judgement.scope) : ""},
         {"status", to_string(row.judgement.race.status)},
         {"as_predicted", row.judgement.race.status == RowStatus::as_predicted},
         {"why", why_seed_race(row.config)},
         {"note", row.judgement.race.note},
         {"seconds", row.seconds}});
    return out;
}

nlohmann::json seed_crash_json(const SeedCrashRow& row)
{
    nlohmann::json out = crash_json(row.crash);
    out.update(seed_config_json(row.seed));
    out["why"] = why_seed_crash(row.seed);
    return out;
}

} // namespace

nlohmann::json seed_json(const SeedScene& scene)
{
    nlohmann::json race = nlohmann::json::array();
    for (const auto& row : scene.race) race.push_back(seed_race_json(row));
    nlohmann::json crash = nlohmann::json::array();
    for (const auto& row : scene.crash) crash.push_back(seed_crash_json(row));
    return {{"act", kSeedAct}, {"skipped", scene.skipped}, {"race", race}, {"crash", crash}};
}

} // namespace forklock::demo
