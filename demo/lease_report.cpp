// Act 5 (leases and fencing) as text and JSON; report.h declares them.
#include "report.h"

#include <fmt/format.h>

#include "report_cells.h"

namespace forklock::demo {
namespace {

std::string flags_cell(const ServerConfig& config)
{
    return fmt::format("--lock-lease-ms {}{}", config.lease_ms, config.fencing ? " --fencing" : "");
}

std::string taken_cell(const LeaseRow& row)
{
    if (row.taker.status != 200) return row.taker.status == 0 ? "-" : std::to_string(row.taker.status);
    return fmt::format("pid {}, token {}, after {:.0f} ms", row.taker.pid, row.taker.token,
                       row.taken_ms);
}

// What the trace saw: two holders of the key at once (overlapping sections), or not.
std::string holders_cell(const LeaseRow& row)
{
    if (row.overlaps < 0) return "-";
    return row.overlaps > 0 ? "2 holders at once" : "1 at a time";
}

std::string late_write_cell(const LeaseRow& row)
{
    const IncrementReply& late = row.holder;
    if (late.status == 409)
        return fmt::format("409: token {} < {}", late.token, late.highest_token);
    if (!late.written) return late.status == 0 ? "-" : std::to_string(late.status);
    const bool again = row.value_after_late == row.taker.value;
    return fmt::format("{}: wrote {}{}", late.status, row.value_after_late, again ? " again" : "");
}

std::string lease_table(const std::vector<LeaseRow>& rows, bool color)
{
    Table table({"mode", "flags", "paused", "for", "taken over by", "trace", "late write", "wrote",
                 "final", "lost", "verdict", "theory"},
                {Align::left, Align::left, Align::right, Align::right, Align::left, Align::left,
                 Align::left, Align::right, Align::right, Align::right, Align::left, Align::left},
                color);
    for (const auto& row : rows) {
        const bool loses = row.judgement.observed == LeaseVerdict::loses_update;
        const bool ran = row.final >= 0;
        table.add_row({{std::string(to_string(row.config.mode))},
                       {flags_cell(row.config)},
                       {row.paused_pid ? std::to_string(row.paused_pid) : "-"},
                       {fmt::format("{:.2f} s", row.paused_ms / 1000)},
                       {taken_cell(row)},
                       {holders_cell(row)},
                       {late_write_cell(row), row.holder.status == 409 ? kGreen : kRed},
                       {std::to_string(row.writes)},
                       {ran ? std::to_string(row.final) : "-"},
                       {ran ? std::to_string(row.writes - row.final) : "-"},
                       {std::string(to_string(row.judgement.observed)), loses ? kRed : kGreen},
                       theory_cell(row.judgement.status)},
                      detail(why_lease(row.config), row.judgement.note));
    }
    return table.render();
}

std::string skip_line(const char* what, const std::string& why)
{
    return why.empty() ? std::string() : fmt::format("{} skipped: {}.\n", what, why);
}

nlohmann::json reply_json(const IncrementReply& reply)
{
    return {{"status", reply.status}, {"value", reply.value},
            {"pid", reply.pid},       {"token", reply.token},
            {"written", reply.written}, {"highest_token", reply.highest_token}};
}

nlohmann::json lease_row_json(const LeaseRow& row)
{
    nlohmann::json out = config_json(row.config);
    out.update({{"paused_pid", row.paused_pid},
                {"paused_ms", row.paused_ms},
                {"taken_after_ms", row.taken_ms},
                {"late_write", reply_json(row.holder)},
                {"taker", reply_json(row.taker)},
                {"value_after_late", row.value_after_late},
                {"committed", row.committed},
                {"writes", row.writes},
                {"final", row.final},
                {"lost", row.writes - row.final},
                {"overlaps", row.overlaps},
                {"attempts", row.attempts},
                {"predicted", to_string(predict_lease(row.config))},
                {"verdict", to_string(row.judgement.observed)},
                {"status", to_string(row.judgement.status)},
                {"as_predicted", row.judgement.status == RowStatus::as_predicted},
                {"why", why_lease(row.config)},
                {"note", row.judgement.note},
                {"seconds", row.seconds}});
    return out;
}

} // namespace

std::string format_leases(const DemoResults& results, bool color)
{
    const LeaseAct& act = results.leases;
    if (!act.ran) return {};
    const std::vector<PauseRow>& postgres = act.postgres_from_act3 ? results.postgres_pause
                                                                   : act.postgres;
    const std::string& postgres_skipped =
        act.postgres_from_act3 ? results.postgres_skipped : act.postgres_skipped;
    return fmt::format(
        "{}\nNo lease: a postgres holder stopped with SIGSTOP keeps its key for as long as it "
        "sleeps (safe, but everyone waits){}.\n\n{}A lease of {} ms: the holder is stopped "
        "for at least {} ms after its last check and before its write, until another worker "
        "has taken the key and committed; then SIGCONT.\n'trace': the server's trace of the "
        "key; 'late write': the paused holder's answer (503: its unlock found the lease gone, after it wrote); 'wrote': increments "
        "that wrote; 'lost': wrote minus final.\n\n{}{}{}",
        paint(fmt::format("Act {}: leases and fencing", kLeaseAct), "1", color),
        act.postgres_from_act3 ? " (Act 3's row)" : postgres.empty() ? " (skipped)" : "",
        postgres.empty() ? "" : pause_table(postgres, color) + "\n", kLeaseMs, kLeasePauseMs,
        lease_table(act.rows, color), skip_line("PostgreSQL row", postgres_skipped),
        skip_line("Redis rows", act.redis_skipped));
}

nlohmann::json leases_json(const LeaseAct& act)
{
    nlohmann::json postgres = nlohmann::json::array();
    for (const auto& row : act.postgres) postgres.push_back(pause_json(row));
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& row : act.rows) rows.push_back(lease_row_json(row));
    return {{"ran", act.ran},
            {"postgres_from_act3", act.postgres_from_act3},
            {"postgres_pause", postgres},
            {"postgres_skipped", act.postgres_skipped},
            {"redis_skipped", act.redis_skipped},
            {"rows", rows}};
}

} // namespace forklock::demo
