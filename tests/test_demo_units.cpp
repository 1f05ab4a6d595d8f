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

TEST_CASE("report: Act 3 shows every row with its why and leaves PostgreSQL to its mode",
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
    CHECK(text.find("PostgreSQL") != std::string::npos);
    CHECK(text.find('\x1b') == std::string::npos);
    DemoResults results;
    results.two_servers.push_back(row);
    CHECK(all_as_predicted(results));
    CHECK(to_json(results)["two_servers"][0]["lost"] == 18);
}
