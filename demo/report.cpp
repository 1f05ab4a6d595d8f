#include "report.h"

#include <fmt/format.h>

#include "table.h"

namespace forklock::demo {
namespace {

constexpr const char* kRed = "31";
constexpr const char* kGreen = "32";
constexpr const char* kYellow = "33";

Cell theory_cell(RowStatus status)
{
    switch (status) {
    case RowStatus::as_predicted: return {"matches", kGreen};
    case RowStatus::unexpected: return {"DIFFERS", kRed};
    case RowStatus::inconclusive: return {"unclear", kYellow};
    }
    return {"?", nullptr};
}

std::string detail(std::string_view why, const std::string& note)
{
    if (note.empty()) return std::string(why);
    return fmt::format("{} ({})", why, note.substr(0, note.find('\n')));
}

std::string workers_x_threads(const ServerConfig& config)
{
    return fmt::format("{} x {}", config.workers, config.threads);
}

nlohmann::json config_json(const ServerConfig& config)
{
    return {{"mode", to_string(config.mode)},
            {"preload", config.preload},
            {"workers", config.workers},
            {"threads", config.threads},
            {"lock_recovery", config.lock_recovery},
            {"lock_name", config.lock_name},
            {"lock_share", config.lock_share}};
}

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

// "yes", "no", or how a table without preload is still found: by name.
std::string preload_cell(const ServerConfig& config)
{
    if (config.preload) return "yes";
    return config.lock_name.empty() ? "no" : "no, named";
}

std::string recovery_cell(const CrashRow& row)
{
    if (row.freed) return fmt::format("after {:.1f} ms", row.freed_after_ms);
    if (row.stuck_503) return fmt::format("NO: 503 after {} s", row.probe_timeout_ms / 1000);
    return "unknown";
}

// The stuck row leads with the sentence the class must remember.
std::string crash_detail(const CrashRow& row)
{
    std::string why(why_crash(row.config));
    if (row.stuck_503) why = describe_recovery(row) + ": " + why;
    if (row.recovered_from != 0) why += fmt::format(" (recovered from pid {})", row.recovered_from);
    return detail(why, row.note);
}

} // namespace

std::string describe_recovery(const CrashRow& row)
{
    if (row.freed) return fmt::format("after {:.1f} ms", row.freed_after_ms);
    if (row.stuck_503)
        return fmt::format("still locked after {} s — like gunicorn with multiprocessing.Lock",
                           row.probe_timeout_ms / 1000);
    return "unknown";
}

namespace {

// The first interleaving the trace found in each losing row, indented under its row's name.
std::string interleavings(const std::vector<RaceRow>& rows, bool color)
{
    std::string out;
    for (const auto& row : rows) {
        if (row.judgement.observed != Verdict::loses_updates || row.witness.examples.empty())
            continue;
        out += fmt::format("\n{} lost updates like this (from that run's trace):\n",
                           paint(describe(row.config), "1", color));
        std::string_view text = row.witness.examples.front();
        while (!text.empty()) {
            const auto end = text.find('\n');
            out += fmt::format("    {}\n", text.substr(0, end));
            text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        }
    }
    return out;
}

} // namespace

std::string format_race(const std::vector<RaceRow>& rows, const RaceSizes& sizes, bool color)
{
    Table table({"mode", "preload", "w x t", "sent", "final", "lost", "overlaps", "pids", "waited",
                 "verdict", "theory"},
                {Align::left, Align::left, Align::left, Align::right, Align::right, Align::right,
                 Align::right, Align::right, Align::right, Align::left, Align::left},
                color);
    for (const auto& row : rows) {
        const bool loses = row.judgement.observed == Verdict::loses_updates;
        table.add_row({{std::string(to_string(row.config.mode))},
                       {preload_cell(row.config)},
                       {workers_x_threads(row.config)},
                       {std::to_string(row.load.sent)},
                       {std::to_string(row.final)},
                       {std::to_string(row.load.ok - row.final)},
                       {row.trace_error.empty() ? std::to_string(row.witness.overlaps) : "?"},
                       {std::to_string(row.load.pids.size())},
                       {std::to_string(row.load.waited)},
                       {std::string(to_string(row.judgement.observed)), loses ? kRed : kGreen},
                       theory_cell(row.judgement.status)},
                      detail(why_race(row.config), row.judgement.note));
    }
    return fmt::format("{}\n{} increments of one counter, {} at a time; each holds the key's lock "
                       "{} ms between read and write.\n'overlaps': pairs of increments the "
                       "server's trace saw inside the \"locked\" section at once; 'pids': workers "
                       "that served them; 'waited': increments that waited for the lock.\n\n{}{}",
                       paint("Act 1: the race", "1", color), sizes.requests, sizes.concurrency,
                       sizes.hold_ms, table.render(), interleavings(rows, color));
}

std::string format_crash(const std::vector<CrashRow>& rows, bool color)
{
    Table table({"mode", "preload", "recovery", "killed", "key usable again", "replaced by",
                 "committed", "final", "theory"},
                {Align::left, Align::left, Align::left, Align::right, Align::left, Align::left,
                 Align::right, Align::right, Align::left},
                color);
    for (const auto& row : rows) {
        const std::string replaced = row.new_pid
                                         ? fmt::format("{} (restarts {} -> {})", row.new_pid,
                                                       row.restarts_before, row.restarts_after)
                                         : "-";
        table.add_row({{std::string(to_string(row.config.mode))},
                       {row.config.preload ? "yes" : "no"},
                       {row.config.lock_recovery ? "on" : "off"},
                       {std::to_string(row.killed_pid)},
                       {recovery_cell(row), row.freed ? kGreen : kRed},
                       {replaced},
                       {std::to_string(row.committed)},
                       {std::to_string(row.final)},
                       theory_cell(row.status)},
                      crash_detail(row));
    }
    return fmt::format(
        "{}\nA worker holding a key's lock (for 10 s) is killed with SIGKILL; how soon "
        "does the next increment of that key succeed?\n'committed': increments "
        "answered 2xx, before and after the kill; 'final' must equal it.\n\n{}",
        paint("Act 2: the crash", "1", color), table.render());
}

std::string format_two_servers(const std::vector<TwoServerRow>& rows, const RaceSizes& sizes,
                               bool color)
{
    Table table(
        {"mode", "flags", "w x t", "sent", "A / B", "final", "lost", "waited", "verdict", "theory"},
        {Align::left, Align::left, Align::left, Align::right, Align::right, Align::right,
         Align::right, Align::right, Align::left, Align::left},
        color);
    for (const auto& row : rows) {
        const bool loses = row.judgement.observed == Verdict::loses_updates;
        std::string flags = describe(row.config);
        flags = flags.substr(flags.find(' ') + 1, flags.rfind(" -w") - flags.find(' ') - 1);
        const int ok = row.a.ok + row.b.ok;
        table.add_row({{std::string(to_string(row.config.mode))},
                       {row.config.preload || !row.config.lock_name.empty() ? flags : "-"},
                       {workers_x_threads(row.config)},
                       {std::to_string(row.a.sent + row.b.sent)},
                       {fmt::format("{} / {}", row.a.ok, row.b.ok)},
                       {std::to_string(row.final)},
                       {std::to_string(ok - row.final)},
                       {std::to_string(row.a.waited + row.b.waited)},
                       {std::string(to_string(row.judgement.observed)), loses ? kRed : kGreen},
                       theory_cell(row.judgement.status)},
                      detail(why_two_servers(row.config), row.judgement.note));
    }
    return fmt::format(
        "{}\nTwo servers (two masters on two ports) share one data directory, like two machines "
        "behind a load balancer; {} increments of one counter alternate between them, {} at a "
        "time, each holding the lock {} ms.\n'A / B': increments each server committed.\n\n{}"
        "PostgreSQL (a lock held by a database server, for many machines): its rows come with "
        "the postgres lock mode, not run here.\n",
        paint("Act 3: two servers", "1", color), sizes.requests, sizes.concurrency, sizes.hold_ms,
        table.render());
}

std::string format_summary(const DemoResults& results, bool color)
{
    int total = 0;
    int matching = 0;
    for (const auto& row : results.race) {
        ++total;
        matching += row.judgement.status == RowStatus::as_predicted ? 1 : 0;
    }
    for (const auto& row : results.crash) {
        ++total;
        matching += row.status == RowStatus::as_predicted ? 1 : 0;
    }
    for (const auto& row : results.two_servers) {
        ++total;
        matching += row.judgement.status == RowStatus::as_predicted ? 1 : 0;
    }
    const bool all = total > 0 && matching == total;
    const std::string text =
        fmt::format("{} of {} rows as the theory predicts ({:.1f} s){}", matching, total,
                    results.seconds, all ? "." : ": the result is not proof, see the notes above.");
    return paint(text, all ? kGreen : kRed, color) + "\n";
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
    return {{"sizes",
             {{"requests", results.sizes.requests},
              {"concurrency", results.sizes.concurrency},
              {"hold_ms", results.sizes.hold_ms},
              {"workers", results.sizes.workers},
              {"threads", results.sizes.threads}}},
            {"race", race},
            {"crash", crash},
            {"two_servers", two_servers},
            {"seconds", results.seconds},
            {"all_as_predicted", all_as_predicted(results)}};
}

bool all_as_predicted(const DemoResults& results)
{
    if (results.race.empty() && results.crash.empty() && results.two_servers.empty()) return false;
    for (const auto& row : results.race)
        if (row.judgement.status != RowStatus::as_predicted) return false;
    for (const auto& row : results.two_servers)
        if (row.judgement.status != RowStatus::as_predicted) return false;
    for (const auto& row : results.crash)
        if (row.status != RowStatus::as_predicted) return false;
    return true;
}

} // namespace forklock::demo
