// The demo's pure pieces, without a server: the theory (what each row must show), the verdict
// logic, the table layout and the JSON report.

#include <catch2/catch.hpp>

#include "report.h"
#include "table.h"
#include "theory.h"

using namespace forklock;
using namespace forklock::demo;

namespace {

ServerConfig config(LockMode mode, bool preload, int workers, int threads = 1)
{
    return {mode, preload, workers, threads, true};
}

// A run whose trace agrees with its counter: every increment traced, overlaps where updates were
// lost, and the lost ones explained.
RaceCounts counts(int ok, long final, int pids)
{
    const long lost = ok - final;
    return {ok,
            ok,
            0,
            final,
            pids,
            ok / 2,
            TraceWitness{ok, lost > 0 ? 2 * lost : 0, lost, {}, lost, lost}};
}

} // namespace

TEST_CASE("theory: modes that let workers overlap lose updates", "[demo_theory]")
{
    CHECK(predict_race(config(LockMode::none, false, 4)) == Verdict::loses_updates);
    CHECK(predict_race(config(LockMode::thread, true, 4)) == Verdict::loses_updates);
    CHECK(predict_race(config(LockMode::semaphore, false, 4)) == Verdict::loses_updates);
    CHECK(predict_race(config(LockMode::mutex, false, 4)) == Verdict::loses_updates);
    CHECK(predict_race(config(LockMode::none, false, 1, 4)) == Verdict::loses_updates);
}

TEST_CASE("theory: shared locks and single processes are safe", "[demo_theory]")
{
    CHECK(predict_race(config(LockMode::thread, false, 1, 4)) == Verdict::safe);
    CHECK(predict_race(config(LockMode::semaphore, true, 4)) == Verdict::safe);
    CHECK(predict_race(config(LockMode::mutex, true, 4)) == Verdict::safe);
    CHECK(predict_race(config(LockMode::flock, false, 4)) == Verdict::safe);
    CHECK(predict_race(config(LockMode::flock, true, 4)) == Verdict::safe);
    CHECK(predict_race(config(LockMode::semaphore, false, 1, 4)) == Verdict::safe);
}

TEST_CASE("theory: why differs with and without preload", "[demo_theory]")
{
    CHECK(why_race(config(LockMode::mutex, true, 4)) !=
          why_race(config(LockMode::mutex, false, 4)));
    CHECK(why_race(config(LockMode::thread, false, 1, 4)).find("one process") != std::string::npos);
    CHECK(why_race(config(LockMode::thread, true, 4)).find("fork copies") != std::string::npos);
}

TEST_CASE("theory: only a semaphore without recovery stays locked after a crash", "[demo_theory]")
{
    ServerConfig stuck = config(LockMode::semaphore, true, 2);
    stuck.lock_recovery = false;
    CHECK(predict_crash(stuck) == CrashVerdict::stays_locked);
    CHECK(predict_crash(config(LockMode::semaphore, true, 2)) == CrashVerdict::recovers);
    CHECK(predict_crash(config(LockMode::mutex, true, 2)) == CrashVerdict::recovers);
    CHECK(predict_crash(config(LockMode::flock, false, 2)) == CrashVerdict::recovers);
}

TEST_CASE("judge_race: lost updates where predicted match", "[demo_verdict]")
{
    const auto judgement = judge_race(config(LockMode::none, false, 4), counts(100, 40, 4));
    CHECK(judgement.observed == Verdict::loses_updates);
    CHECK(judgement.status == RowStatus::as_predicted);
    CHECK(judgement.note.empty());
}

TEST_CASE("judge_race: a safe mode that loses one update differs", "[demo_verdict]")
{
    const auto judgement = judge_race(config(LockMode::mutex, true, 4), counts(100, 99, 4));
    CHECK(judgement.observed == Verdict::loses_updates);
    CHECK(judgement.status == RowStatus::unexpected);
}

TEST_CASE("judge_race: a losing mode that got lucky differs", "[demo_verdict]")
{
    const auto judgement = judge_race(config(LockMode::thread, true, 4), counts(100, 100, 4));
    CHECK(judgement.observed == Verdict::safe);
    CHECK(judgement.status == RowStatus::unexpected);
}

TEST_CASE("judge_race: one worker serving everything proves nothing", "[demo_verdict]")
{
    const auto judgement = judge_race(config(LockMode::flock, false, 4), counts(100, 100, 1));
    CHECK(judgement.status == RowStatus::inconclusive);
    CHECK(judge_race(config(LockMode::thread, false, 1, 4), counts(100, 100, 1)).status ==
          RowStatus::as_predicted);
}

TEST_CASE("judge_race: a safe row where nobody waited for the lock proves nothing",
          "[demo_verdict]")
{
    RaceCounts unopposed = counts(100, 100, 4);
    unopposed.waited = 0;
    CHECK(judge_race(config(LockMode::flock, false, 4), unopposed).status ==
          RowStatus::inconclusive);
    // Losing rows need no waits: their lost updates are the proof.
    RaceCounts lost = counts(100, 30, 4);
    lost.waited = 0;
    CHECK(judge_race(config(LockMode::none, false, 4), lost).status == RowStatus::as_predicted);
}

TEST_CASE("judge_race: failed requests or a counter above the commits are inconclusive",
          "[demo_verdict]")
{
    RaceCounts failed = counts(90, 90, 4);
    failed.sent = 100;
    failed.errors = 10;
    CHECK(judge_race(config(LockMode::mutex, true, 4), failed).status == RowStatus::inconclusive);
    CHECK(judge_race(config(LockMode::mutex, true, 4), counts(100, 101, 4)).status ==
          RowStatus::inconclusive);
}

TEST_CASE("judge_race: a trace that disagrees with the counter makes the row unclear",
          "[demo_verdict]")
{
    const ServerConfig safe = config(LockMode::mutex, true, 4);
    const ServerConfig losing = config(LockMode::thread, true, 4);
    REQUIRE(judge_race(safe, counts(100, 100, 4)).status == RowStatus::as_predicted);
    REQUIRE(judge_race(losing, counts(100, 40, 4)).status == RowStatus::as_predicted);

    RaceCounts overlapped = counts(100, 100, 4);
    overlapped.trace->overlaps = 3;
    const auto judgement = judge_race(safe, overlapped);
    CHECK(judgement.status == RowStatus::inconclusive);
    CHECK(judgement.note == "nothing was lost, yet the trace witnessed 3 overlaps");

    RaceCounts unexplained = counts(100, 40, 4);
    unexplained.trace->lost = unexplained.trace->lost_min = unexplained.trace->lost_max = 59;
    CHECK(judge_race(losing, unexplained).note == "the trace explains 59 of the 60 lost updates");
    CHECK(judge_race(losing, unexplained).status == RowStatus::inconclusive);

    // Two writes that ended at once: the trace's 61 may be 60 if the other one landed last.
    RaceCounts ambiguous = counts(100, 40, 4);
    ambiguous.trace->lost = ambiguous.trace->lost_max = 61;
    ambiguous.trace->lost_min = 60;
    CHECK(judge_race(losing, ambiguous).status == RowStatus::as_predicted);
    ambiguous.trace->lost_min = 61;
    CHECK(judge_race(losing, ambiguous).note == "the trace explains 61 of the 60 lost updates");

    RaceCounts missed = counts(100, 40, 4);
    missed.trace->increments = 99;
    CHECK(judge_race(losing, missed).note == "the trace saw 99 of the 100 committed increments");

    RaceCounts unread = counts(100, 100, 4);
    unread.trace.reset();
    CHECK(judge_race(safe, unread).note == "the trace could not be read");
    CHECK(judge_race(safe, unread).status == RowStatus::inconclusive);
}

TEST_CASE("judge_crash: recovery, replacement and every commit counted match", "[demo_verdict]")
{
    const ServerConfig mutex = config(LockMode::mutex, true, 2);
    CHECK(judge_crash(mutex, {true, false, true, 7, 7}).status == RowStatus::as_predicted);
    CHECK(judge_crash(mutex, {true, false, true, 7, 6}).status == RowStatus::unexpected);
    CHECK(judge_crash(mutex, {true, false, false, 7, 7}).status == RowStatus::unexpected);
    CHECK(judge_crash(mutex, {false, true, true, 3, 3}).status == RowStatus::unexpected);
    CHECK(judge_crash(mutex, {false, false, true, 3, 3}).status == RowStatus::inconclusive);
}

TEST_CASE("judge_crash: a stuck key is what theory predicts without recovery", "[demo_verdict]")
{
    ServerConfig stuck = config(LockMode::semaphore, true, 2);
    stuck.lock_recovery = false;
    const auto judgement = judge_crash(stuck, {false, true, true, 3, 3});
    CHECK(judgement.status == RowStatus::as_predicted);
    CHECK(judgement.observed == CrashVerdict::stays_locked);
    CrashRow row;
    row.config = stuck;
    row.stuck_503 = true;
    row.probe_timeout_ms = 2000;
    CHECK(describe_recovery(row) ==
          "still locked after 2 s — like gunicorn with multiprocessing.Lock");
}

TEST_CASE("Table: pads columns by visible width and aligns numbers right", "[demo_table]")
{
    Table table({"mode", "n"}, {Align::left, Align::right}, false);
    table.add_row({{"none"}, {"7"}}, "why");
    table.add_row({{"semaphore"}, {"1234"}});
    CHECK(table.render() == "mode          n\n"
                            "none          7\n"
                            "    why\n"
                            "semaphore  1234\n");
}

TEST_CASE("Table: colour codes do not count towards the width", "[demo_table]")
{
    Table table({"verdict", "x"}, {Align::left, Align::left}, true);
    table.add_row({{"safe", "32"}, {"—"}});
    const std::string out = table.render();
    CHECK(out.find("\033[32msafe\033[0m   ") != std::string::npos);
    CHECK(visible_width("—") == 1);
    CHECK(paint("x", "31", false) == "x");
}

TEST_CASE("Table: rows printed one at a time keep the widths fitted before the header",
          "[demo_table]")
{
    Table table({"mode", "n"}, {Align::left, Align::right}, false);
    table.fit({{"semaphore"}, {"1234"}});
    CHECK(table.render_header() == "mode          n\n");
    CHECK(table.render_row({{"none"}, {"7"}}, "why") == "none          7\n    why\n");
    // A cell wider than its column is shown whole, pushing the rest of its line right.
    CHECK(table.render_row({{"semaphore"}, {"123456"}}) == "semaphore  123456\n");
}

TEST_CASE("report: Act 1's rows printed as they come line up under its header", "[demo_report]")
{
    const RaceSizes sizes;
    const auto scenarios = race_scenarios(sizes);
    const RaceReport report(scenarios, sizes, false);
    const std::string head = report.head();
    const std::string header = head.substr(head.rfind('\n', head.size() - 2) + 1);
    for (const auto& scenario : scenarios) {
        RaceRow row;
        row.config = scenario;
        row.load.sent = row.load.ok = sizes.requests;
        row.load.waited = sizes.requests;
        row.load.pids = {10, 11, 12, 13};
        row.final = 1;
        row.witness.overlaps = sizes.requests;
        row.judgement = judge_race(row.config, counts(sizes.requests, 1, 4));
        const std::string line = report.row(row).substr(0, report.row(row).find('\n'));
        INFO(header << line);
        // Every right-aligned count ends under its header's last letter, and the verdict starts
        // under "verdict".
        for (const std::string_view column : {"sent", "final", "lost", "overlaps", "waited"}) {
            const std::size_t end = header.find(column) + column.size();
            CHECK(line[end - 1] != ' ');
            CHECK(line[end] == ' ');
        }
        const std::string_view verdict = to_string(row.judgement.observed);
        CHECK(line.substr(header.find("verdict"), verdict.size()) == verdict);
    }
    std::vector<RaceRow> none;
    CHECK(format_race(none, sizes, false) == RaceReport({}, sizes, false).head());
}

TEST_CASE("report: plain text has no escape codes and shows every row", "[demo_report]")
{
    DemoResults results;
    RaceRow row;
    row.config = config(LockMode::none, false, 4);
    row.load.sent = row.load.ok = 100;
    row.load.pids = {10, 11, 12};
    row.final = 37;
    row.judgement = judge_race(row.config, counts(100, 37, 3));
    results.race.push_back(row);
    const std::string text = format_race(results.race, results.sizes, false);
    CHECK(text.find('\033') == std::string::npos);
    CHECK(text.find("loses updates") != std::string::npos);
    CHECK(text.find("63") != std::string::npos);
    CHECK(all_as_predicted(results));
    CHECK(format_summary(results, false).find("1 of 1 rows") != std::string::npos);
}

TEST_CASE("report: JSON carries verdicts and the overall result", "[demo_report]")
{
    DemoResults results;
    CHECK_FALSE(all_as_predicted(results));
    RaceRow row;
    row.config = config(LockMode::mutex, true, 4);
    row.load.sent = row.load.ok = 50;
    row.final = 50;
    row.judgement = judge_race(row.config, counts(50, 50, 4));
    results.race.push_back(row);
    const auto json = to_json(results);
    CHECK(json["all_as_predicted"] == true);
    CHECK(json["race"][0]["verdict"] == "safe");
    CHECK(json["race"][0]["lost"] == 0);
    CHECK(json["race"][0]["preload"] == true);
}

TEST_CASE("theory: semaphore and mutex without preload are safe when named", "[demo_theory]")
{
    ServerConfig named = config(LockMode::mutex, false, 4);
    named.lock_name = "n";
    CHECK(predict_race(named) == Verdict::safe);
    CHECK(why_race(named).find("name is the meeting point") != std::string::npos);
    named.mode = LockMode::semaphore;
    CHECK(predict_race(named) == Verdict::safe);
    CHECK(why_race(named).find("name is the meeting point") != std::string::npos);
}

TEST_CASE("theory: across two servers only the kernel's or one named table excludes",
          "[demo_theory]")
{
    CHECK(predict_two_servers(config(LockMode::mutex, true, 2)) == Verdict::loses_updates);
    CHECK(predict_two_servers(config(LockMode::semaphore, true, 2)) == Verdict::loses_updates);
    CHECK(predict_two_servers(config(LockMode::flock, false, 2)) == Verdict::safe);
    ServerConfig named = config(LockMode::mutex, false, 2);
    named.lock_name = "n";
    CHECK(predict_two_servers(named) == Verdict::loses_updates); // not shared: refused anyway
    named.lock_share = true;
    CHECK(predict_two_servers(named) == Verdict::safe);
    CHECK(why_two_servers(config(LockMode::mutex, true, 2)).find("two tables") !=
          std::string::npos);
    CHECK(why_two_servers(config(LockMode::flock, false, 2)).find("one kernel") !=
          std::string::npos);
    CHECK(why_two_servers(named).find("one machine") != std::string::npos);
}

TEST_CASE("judge_two_servers: both servers served, verdict as theory, or why not", "[demo_verdict]")
{
    const ServerConfig preload = config(LockMode::mutex, true, 2);
    CHECK(judge_two_servers(preload, {48, 48, 0, 30, 24, 24, 10}).status ==
          RowStatus::as_predicted);
    CHECK(judge_two_servers(preload, {48, 48, 0, 48, 24, 24, 10}).status == RowStatus::unexpected);
    CHECK(
        judge_two_servers(config(LockMode::flock, false, 2), {48, 48, 0, 48, 24, 24, 10}).status ==
        RowStatus::as_predicted);
    CHECK(judge_two_servers(preload, {48, 48, 0, 30, 48, 0, 10}).status == RowStatus::inconclusive);
    CHECK(
        judge_two_servers(config(LockMode::flock, false, 2), {48, 47, 1, 47, 24, 23, 10}).status ==
        RowStatus::inconclusive);
}

TEST_CASE("report: Act 3 shows every row with its why, and why its PostgreSQL rows were skipped",
          "[demo_report]")
{
    TwoServerRow row;
    row.config = config(LockMode::mutex, true, 2);
    row.a.sent = row.a.ok = 24;
    row.b.sent = row.b.ok = 24;
    row.final = 30;
    row.judgement = judge_two_servers(row.config, {48, 48, 0, 30, 24, 24, 10});
    const std::string text = format_two_servers({row}, RaceSizes{}, false);
    CHECK(text.find("Act 3: two servers") != std::string::npos);
    CHECK(text.find("24 / 24") != std::string::npos);
    CHECK(text.find("two tables") != std::string::npos);
    CHECK(text.find("PostgreSQL") == std::string::npos);
    CHECK(format_two_servers({row}, RaceSizes{}, false, "not installed")
              .find("PostgreSQL rows skipped: not installed.") != std::string::npos);
    CHECK(text.find('\x1b') == std::string::npos);
    DemoResults results;
    results.two_servers.push_back(row);
    CHECK(all_as_predicted(results));
    CHECK(to_json(results)["two_servers"][0]["lost"] == 18);
}

TEST_CASE("theory: PostgreSQL excludes across servers and releases a dead holder's key",
          "[demo_theory]")
{
    const ServerConfig postgres = config(LockMode::postgres, false, 2);
    CHECK(predict_two_servers(postgres) == Verdict::safe);
    CHECK(why_two_servers(postgres).find("one database server") != std::string::npos);
    CHECK(predict_crash(config(LockMode::postgres, true, 2)) == CrashVerdict::recovers);
    CHECK(why_crash(postgres).find("PostgreSQL ends its session") != std::string::npos);
    CHECK(predict_pause(postgres) == PauseVerdict::held_while_paused);
    CHECK(why_pause(postgres).find("session") != std::string::npos);
    CHECK(predict_pause(config(LockMode::none, false, 2)) == PauseVerdict::released_while_paused);
}

TEST_CASE("theory: Redis excludes across servers, and a paused holder keeps its key only for its "
          "lease",
          "[demo_theory]")
{
    const ServerConfig redis = config(LockMode::redis, false, 2);
    CHECK(predict_race(redis) == Verdict::safe);
    CHECK(predict_two_servers(redis) == Verdict::safe);
    CHECK(why_two_servers(redis).find("one Redis") != std::string::npos);
    CHECK(predict_crash(redis) == CrashVerdict::recovers);
    CHECK(why_crash(redis).find("lease (PX) expires") != std::string::npos);
    CHECK(why_pause(redis).find("until its lease expires") != std::string::npos);
}

TEST_CASE("judge_pause: refused while paused, finished and free after SIGCONT, nothing lost",
          "[demo_verdict]")
{
    const ServerConfig postgres = config(LockMode::postgres, true, 2, 2);
    // paused_holding, probes, refused, refused_past_hold, admitted, holder_finished, freed_after,
    // committed, final
    CHECK(judge_pause(postgres, {true, 3, 3, 1, 0, true, true, 6, 6}).status ==
          RowStatus::as_predicted);
    const auto admitted = judge_pause(postgres, {true, 3, 2, 1, 1, true, true, 7, 7});
    CHECK(admitted.status == RowStatus::unexpected);
    CHECK(admitted.observed == PauseVerdict::released_while_paused);
    CHECK(judge_pause(postgres, {true, 3, 3, 1, 0, false, true, 5, 5}).status ==
          RowStatus::unexpected);
    CHECK(judge_pause(postgres, {true, 3, 3, 1, 0, true, false, 5, 5}).status ==
          RowStatus::unexpected);
    CHECK(judge_pause(postgres, {true, 3, 3, 1, 0, true, true, 6, 5}).status ==
          RowStatus::unexpected);
    CHECK(judge_pause(postgres, {false, 3, 0, 0, 0, true, true, 6, 6}).note ==
          "the holder finished before it was paused");
    CHECK(judge_pause(postgres, {true, 3, 2, 1, 0, true, true, 6, 6}).status ==
          RowStatus::inconclusive);
    // Refused only within the holder's own hold: the pause kept nothing locked.
    CHECK(judge_pause(postgres, {true, 3, 3, 0, 0, true, true, 6, 6}).status ==
          RowStatus::inconclusive);
}

TEST_CASE("report: the PostgreSQL holders' rows are shown, counted and in the JSON",
          "[demo_report]")
{
    DemoResults results;
    CrashRow crash;
    crash.config = config(LockMode::postgres, true, 2, 2);
    crash.freed = true;
    crash.freed_after_ms = 1.3;
    crash.status = RowStatus::as_predicted;
    results.postgres_crash.push_back(crash);
    PauseRow pause;
    pause.config = crash.config;
    pause.paused_pid = 4242;
    pause.probes = pause.refused = 3;
    pause.probe_timeout_ms = 300;
    pause.holder_finished = pause.freed_after = true;
    pause.status = RowStatus::as_predicted;
    results.postgres_pause.push_back(pause);
    const std::string text =
        format_postgres_holders(results.postgres_crash, results.postgres_pause, false);
    CHECK(text.find("after 1.3 ms") != std::string::npos);
    CHECK(text.find("3 of 3: 503 (300 ms)") != std::string::npos);
    CHECK(text.find("4242") != std::string::npos);
    CHECK(format_postgres_holders({}, {}, false).empty());
    CHECK(all_as_predicted(results));
    CHECK(format_summary(results, false).find("2 of 2 rows") != std::string::npos);
    CHECK(to_json(results)["postgres_pause"][0]["refused"] == 3);
    results.postgres_pause[0].status = RowStatus::unexpected;
    CHECK_FALSE(all_as_predicted(results));
}
