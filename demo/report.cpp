#include "report.h"

#include <algorithm>

#include <fmt/format.h>

#include "report_cells.h"

namespace forklock::demo {

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

namespace {

std::string workers_x_threads(const ServerConfig& config)
{
    return fmt::format("{} x {}", config.workers, config.threads);
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

namespace {

Table race_table(const std::vector<ServerConfig>& scenarios, const RaceSizes& sizes, bool color)
{
    Table table({"mode", "preload", "w x t", "sent", "final", "lost", "overlaps", "pids", "waited",
                 "verdict", "theory"},
                {Align::left, Align::left, Align::left, Align::right, Align::right, Align::right,
                 Align::right, Align::right, Align::right, Align::left, Align::left},
                color);
    // The widest cell each scenario can have: counts up to the requests sent, either verdict.
    const std::string most = std::to_string(sizes.requests);
    for (const auto& config : scenarios) {
        for (const Verdict verdict : {Verdict::loses_updates, Verdict::safe})
            table.fit({{std::string(to_string(config.mode))},
                       {preload_cell(config)},
                       {workers_x_threads(config)},
                       {most},
                       {most},
                       {most},
                       {most},
                       {std::to_string(config.workers)},
                       {most},
                       {std::string(to_string(verdict))},
                       {""}});
    }
    return table;
}

std::vector<ServerConfig> configs_of(const std::vector<RaceRow>& rows)
{
    std::vector<ServerConfig> configs;
    for (const auto& row : rows) configs.push_back(row.config);
    return configs;
}

} // namespace

RaceReport::RaceReport(const std::vector<ServerConfig>& scenarios, const RaceSizes& sizes,
                       bool color)
    : sizes_(sizes), color_(color), table_(race_table(scenarios, sizes, color))
{
}

std::string RaceReport::head() const
{
    return fmt::format("{}\n{} increments of one counter, {} at a time; each holds the key's lock "
                       "{} ms between read and write.\n'overlaps': pairs of increments the "
                       "server's trace saw inside the \"locked\" section at once; 'pids': workers "
                       "that served them; 'waited': increments that waited for the lock.\n\n{}",
                       paint("Act 1: the race", "1", color_), sizes_.requests, sizes_.concurrency,
                       sizes_.hold_ms, table_.render_header());
}

std::string RaceReport::row(const RaceRow& row) const
{
    const bool loses = row.judgement.observed == Verdict::loses_updates;
    return table_.render_row(
        {{std::string(to_string(row.config.mode))},
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

std::string RaceReport::tail(const std::vector<RaceRow>& rows) const
{
    return interleavings(rows, color_);
}

std::string format_race(const std::vector<RaceRow>& rows, const RaceSizes& sizes, bool color)
{
    const RaceReport report(configs_of(rows), sizes, color);
    std::string out = report.head();
    for (const auto& row : rows) out += report.row(row);
    return out + report.tail(rows);
}

namespace {

std::string crash_table(const std::vector<CrashRow>& rows, bool color)
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
    return table.render();
}

std::string pause_during_cell(const PauseRow& row)
{
    if (row.probes == 0) return "-";
    return fmt::format("{} of {}: 503 ({} ms)", row.refused, row.probes, row.probe_timeout_ms);
}

std::string pause_after_cell(const PauseRow& row)
{
    if (!row.holder_finished) return "holder: no 200";
    if (!row.freed_after) return "key: still locked";
    return fmt::format("holder 200 after {:.1f} ms, key free after {:.1f} ms",
                       row.holder_finished_after_ms, row.freed_after_ms);
}

} // namespace

std::string pause_table(const std::vector<PauseRow>& rows, bool color)
{
    Table table({"mode", "preload", "paused", "for", "while paused", "after SIGCONT", "committed",
                 "final", "theory"},
                {Align::left, Align::left, Align::right, Align::right, Align::left, Align::left,
                 Align::right, Align::right, Align::left},
                color);
    for (const auto& row : rows) {
        const bool held = row.observed == PauseVerdict::held_while_paused;
        table.add_row({{std::string(to_string(row.config.mode))},
                       {row.config.preload ? "yes" : "no"},
                       {std::to_string(row.paused_pid)},
                       {fmt::format("{:.2f} s", row.paused_ms / 1000)},
                       {pause_during_cell(row), held ? kGreen : kRed},
                       {pause_after_cell(row), row.freed_after ? kGreen : kRed},
                       {std::to_string(row.committed)},
                       {std::to_string(row.final)},
                       theory_cell(row.status)},
                      detail(why_pause(row.config), row.note));
    }
    return table.render();
}

std::string format_crash(const std::vector<CrashRow>& rows, bool color)
{
    return fmt::format(
        "{}\nA worker holding a key's lock (for 10 s) is killed with SIGKILL; how soon "
        "does the next increment of that key succeed?\n'committed': increments "
        "answered 2xx, before and after the kill; 'final' must equal it.\n\n{}",
        paint("Act 2: the crash", "1", color), crash_table(rows, color));
}

std::string format_two_servers(const std::vector<TwoServerRow>& rows, const RaceSizes& sizes,
                               bool color, const std::string& postgres_skipped)
{
    Table table(
        {"mode", "flags", "w x t", "sent", "A / B", "final", "lost", "waited", "verdict", "theory"},
        {Align::left, Align::left, Align::left, Align::right, Align::right, Align::right,
         Align::right, Align::right, Align::left, Align::left},
        color);
    for (const auto& row : rows) {
        const bool loses = row.judgement.observed == Verdict::loses_updates;
        std::string flags = describe(row.config);
        const auto first = flags.find(" --");
        flags = first < flags.rfind(" -w") ? flags.substr(first + 1, flags.rfind(" -w") - first - 1)
                                           : std::string();
        const int ok = row.a.ok + row.b.ok;
        table.add_row({{std::string(to_string(row.config.mode))},
                       {flags.empty() ? "-" : flags},
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
        "time, each holding the lock {} ms.\n'A / B': increments each server committed.\n\n{}{}",
        paint("Act 3: two servers", "1", color), sizes.requests, sizes.concurrency, sizes.hold_ms,
        table.render(),
        postgres_skipped.empty() ? ""
                                 : fmt::format("PostgreSQL rows skipped: {}.\n", postgres_skipped));
}

std::string format_postgres_holders(const std::vector<CrashRow>& crash,
                                    const std::vector<PauseRow>& pause, bool color)
{
    if (crash.empty() && pause.empty()) return {};
    return fmt::format(
        "{}\nA worker holding a key in postgres mode (its lock is PostgreSQL's advisory lock, "
        "held by the worker's session) is killed with SIGKILL; how soon does the next "
        "increment succeed?\n\n{}\nThe holder is stopped with SIGSTOP instead, inside a "
        "{} ms hold; increments with timeout_ms are sent while it sleeps, then SIGCONT.\n"
        "'while paused': increments that answered 503 naming the paused pid as the owner; "
        "'committed' includes the holder's.\n\n{}",
        paint("Act 3: a PostgreSQL holder that dies, and one that sleeps", "1", color),
        crash_table(crash, color), kPauseHoldMs, pause_table(pause, color));
}

namespace {

// Every row's status, in the order the acts print them.
std::vector<RowStatus> statuses(const DemoResults& results)
{
    std::vector<RowStatus> out;
    for (const auto& row : results.race) out.push_back(row.judgement.status);
    for (const auto& row : results.crash) out.push_back(row.status);
    for (const auto& row : results.two_servers) out.push_back(row.judgement.status);
    for (const auto& row : results.postgres_crash) out.push_back(row.status);
    for (const auto& row : results.postgres_pause) out.push_back(row.status);
    for (const auto& row : results.seed.race) out.push_back(row.judgement.race.status);
    for (const auto& row : results.seed.crash) out.push_back(row.crash.status);
    for (const auto& row : results.leases.postgres) out.push_back(row.status);
    for (const auto& row : results.leases.rows) out.push_back(row.judgement.status);
    return out;
}

} // namespace

std::string format_summary(const DemoResults& results, bool color)
{
    const std::vector<RowStatus> all_rows = statuses(results);
    const auto matching = std::count(all_rows.begin(), all_rows.end(), RowStatus::as_predicted);
    const bool all = all_as_predicted(results);
    const std::string text =
        fmt::format("{} of {} rows as the theory predicts ({:.1f} s){}", matching, all_rows.size(),
                    results.seconds, all ? "." : ": the result is not proof, see the notes above.");
    return paint(text, all ? kGreen : kRed, color) + "\n";
}

bool all_as_predicted(const DemoResults& results)
{
    const std::vector<RowStatus> all_rows = statuses(results);
    return !all_rows.empty() && std::all_of(all_rows.begin(), all_rows.end(), [](RowStatus s) {
        return s == RowStatus::as_predicted;
    });
}

} // namespace forklock::demo
