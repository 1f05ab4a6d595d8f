// The seed's scene's pure pieces (demo/seed_theory.h, its tables and JSON), without gunicorn.

#include <catch2/catch.hpp>

#include "report.h"
#include "seed_theory.h"

using namespace forklock::demo;

namespace {

const SeedConfig kThreading{PyLock::threading, true, 4};
const SeedConfig kMpNoPreload{PyLock::multiprocessing, false, 4};
const SeedConfig kMpPreload{PyLock::multiprocessing, true, 4};
const SeedConfig kForklock{PyLock::forklock, false, 4, "demo-1-seed"};

// A run with `lost` updates lost, spread over 4 workers, half the increments waiting.
SeedRaceCounts counts(long lost, std::optional<double> other_key_ms = std::nullopt)
{
    return {48, 48, 0, 48 - lost, 4, lost > 0 ? 0 : 24, other_key_ms};
}

SeedRaceRow race_row(const SeedConfig& config, const SeedRaceCounts& measured)
{
    SeedRaceRow row;
    row.config = config;
    row.load.sent = measured.sent;
    row.load.ok = measured.ok;
    row.load.pids = {11, 12, 13, 14};
    row.load.waited = measured.waited;
    row.final = measured.final;
    row.other_key_waited_ms = measured.other_key_waited_ms;
    row.judgement = judge_seed_race(config, measured);
    return row;
}

} // namespace

TEST_CASE("seed theory: threading.Lock, and multiprocessing.Lock made after fork, lose updates",
          "[demo_seed]")
{
    CHECK(predict_seed_race(kThreading) == Verdict::loses_updates);
    CHECK(predict_seed_race(kMpNoPreload) == Verdict::loses_updates);
    CHECK_FALSE(predict_key_scope(kThreading));
    CHECK_FALSE(predict_key_scope(kMpNoPreload));
    CHECK(why_seed_race(kThreading).find("fork copies") != std::string_view::npos);
    CHECK(why_seed_race(kMpNoPreload).find("after fork") != std::string_view::npos);
}

TEST_CASE("seed theory: multiprocessing.Lock --preload is safe but one lock for every key",
          "[demo_seed]")
{
    CHECK(predict_seed_race(kMpPreload) == Verdict::safe);
    CHECK(predict_key_scope(kMpPreload) == KeyScope::one_for_all);
    CHECK(predict_seed_race(kForklock) == Verdict::safe);
    CHECK(predict_key_scope(kForklock) == KeyScope::per_key);
    CHECK(why_seed_race(kMpPreload) != why_seed_race(kMpNoPreload));
}

TEST_CASE("seed theory: a killed holder's multiprocessing.Lock stays locked, forklock's recovers",
          "[demo_seed]")
{
    CHECK(predict_seed_crash(kMpPreload) == CrashVerdict::stays_locked);
    CHECK(predict_seed_crash(kForklock) == CrashVerdict::recovers);
    CHECK(why_seed_crash(kForklock).find("EOWNERDEAD") != std::string_view::npos);
    // The Python locks are forklock's modes: the same theory answers for both.
    CHECK(as_server_config(kMpPreload).mode == forklock::LockMode::semaphore);
    CHECK_FALSE(as_server_config(kMpPreload).lock_recovery);
    CHECK(as_server_config(kForklock).lock_name == "demo-1-seed");
}

TEST_CASE("judge_seed_race: a row matches only with its verdict and its key scope", "[demo_seed]")
{
    CHECK(judge_seed_race(kThreading, counts(30)).race.status == RowStatus::as_predicted);
    CHECK(judge_seed_race(kThreading, counts(0)).race.status == RowStatus::unexpected);
    CHECK(judge_seed_race(kMpPreload, counts(0, 900.0)).race.status == RowStatus::as_predicted);
    CHECK(judge_seed_race(kMpPreload, counts(0, 900.0)).scope == KeyScope::one_for_all);
    const SeedRaceJudgement free_key = judge_seed_race(kMpPreload, counts(0, 0.1));
    CHECK(free_key.race.status == RowStatus::unexpected);
    CHECK(free_key.race.note.find("one lock for all keys") != std::string::npos);
    CHECK(judge_seed_race(kForklock, counts(0, 0.1)).race.status == RowStatus::as_predicted);
    CHECK(judge_seed_race(kForklock, counts(0, 900.0)).race.status == RowStatus::unexpected);
}

TEST_CASE("judge_seed_race: one worker, no waiting or no probe of the other key is unclear",
          "[demo_seed]")
{
    SeedRaceCounts one_worker = counts(0, 0.1);
    one_worker.worker_pids = 1;
    CHECK(judge_seed_race(kForklock, one_worker).race.status == RowStatus::inconclusive);
    SeedRaceCounts no_wait = counts(0, 0.1);
    no_wait.waited = 0;
    CHECK(judge_seed_race(kForklock, no_wait).race.status == RowStatus::inconclusive);
    CHECK(judge_seed_race(kForklock, counts(0)).race.status == RowStatus::inconclusive);
    SeedRaceCounts failed = counts(0, 0.1);
    failed.errors = 2;
    CHECK(judge_seed_race(kForklock, failed).race.note == "2 of 48 increments failed");
}

TEST_CASE("report: a skipped seed's scene is one line saying why, and adds no row", "[demo_seed]")
{
    DemoResults results;
    results.seed.skipped = "no Python at /nowhere/python3";
    const std::string text = format_seed(results.seed, results.sizes, false);
    CHECK(text == seed_title() + ": skipped: no Python at /nowhere/python3.\n");
    CHECK(seed_title().starts_with("Act " + std::to_string(kSeedAct) + ", the seed"));
    CHECK(to_json(results)["seed"]["skipped"] == "no Python at /nowhere/python3");
    CHECK_FALSE(all_as_predicted(results)); // no row at all proves nothing
}

TEST_CASE("report: the seed's rows are shown with their why, counted and in the JSON",
          "[demo_seed]")
{
    DemoResults results;
    results.seed.race = {race_row(kThreading, counts(30)), race_row(kMpPreload, counts(0, 900.0))};
    SeedCrashRow stuck{kMpPreload, {}};
    stuck.crash.config = as_server_config(kMpPreload);
    stuck.crash.stuck_503 = true;
    stuck.crash.probe_timeout_ms = 2'000;
    stuck.crash.status = RowStatus::as_predicted;
    results.seed.crash = {stuck};
    const std::string text = format_seed(results.seed, results.sizes, false);
    CHECK(text.find("threading.Lock") != std::string::npos);
    CHECK(text.find("safe, one lock for all keys") != std::string::npos);
    CHECK(text.find("waited 900.0 ms") != std::string::npos);
    CHECK(text.find("NO: still locked after 2 s") != std::string::npos);
    CHECK(text.find(std::string(why_seed_crash(kMpPreload))) != std::string::npos);
    CHECK(format_summary(results, false).find("3 of 3 rows") != std::string::npos);
    CHECK(all_as_predicted(results));
    const nlohmann::json json = to_json(results)["seed"];
    CHECK(json["race"][1]["scope"] == "one lock for all keys");
    CHECK(json["race"][0]["lock"] == "threading.Lock");
    CHECK(json["crash"][0]["lock"] == "multiprocessing.Lock");
    CHECK(json["crash"][0]["verdict"] == "stays locked");
    results.seed.race[0].judgement.race.status = RowStatus::unexpected;
    CHECK_FALSE(all_as_predicted(results));
}
