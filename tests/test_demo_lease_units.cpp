// Act 5's pure pieces, without a server: what a lease predicts without and with fencing, how a
// row is judged from what it saw, how the act is printed, counted and put in the JSON, and the
// flag that selects it.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "options.h"
#include "report.h"

using namespace forklock;
using namespace forklock::demo;

namespace {

ServerConfig leased(LockMode mode, bool fencing)
{
    ServerConfig config{mode, true, 2, 1};
    config.lease_ms = kLeaseMs;
    config.fencing = fencing;
    return config;
}

// What a run without fencing sees when all goes to plan: the holder's late write lands (its
// unlock answers 503 "written") over the taker's value 3; 6 wrote, the counter says 5.
LeaseFacts lost_update()
{
    LeaseFacts f;
    f.paused_holding = f.taken_over = f.holder_wrote = true;
    f.holder_status = 503;
    f.taker_value = f.value_after_late = 3;
    f.taker_token = 34;
    f.overlaps = 1;
    f.committed = 5;
    f.writes = 6;
    f.final = 5;
    return f;
}

// With fencing: the late write of token 33 is refused, the taker's 34 stands, nothing is lost.
LeaseFacts refused()
{
    LeaseFacts f = lost_update();
    f.holder_wrote = false;
    f.holder_status = 409;
    f.holder_token = 33;
    f.writes = 5;
    return f;
}

} // namespace

TEST_CASE("lease theory: a lease loses an update without fencing and refuses the late write with "
          "it, in redis and in the table's semaphore mode",
          "[demo_theory]")
{
    for (const LockMode mode : {LockMode::redis, LockMode::semaphore}) {
        CHECK(predict_lease(leased(mode, false)) == LeaseVerdict::loses_update);
        CHECK(predict_lease(leased(mode, true)) == LeaseVerdict::refuses_late_write);
        CHECK_FALSE(why_lease(leased(mode, false)).empty());
    }
    CHECK(why_lease(leased(LockMode::semaphore, false)).find("not about Redis") !=
          std::string::npos);
}

TEST_CASE("judge_lease: a late write over the taker's value, one lost and two holders in the "
          "trace match without fencing",
          "[demo_verdict]")
{
    const ServerConfig redis = leased(LockMode::redis, false);
    CHECK(judge_lease(redis, lost_update()).status == RowStatus::as_predicted);
    LeaseFacts none_lost = lost_update();
    none_lost.final = 6;
    CHECK(judge_lease(redis, none_lost).status == RowStatus::unexpected);
    LeaseFacts no_overlap = lost_update();
    no_overlap.overlaps = 0;
    CHECK(judge_lease(redis, no_overlap).note == "the trace shows no two holders at once");
    LeaseFacts other_value = lost_update();
    other_value.value_after_late = 4;
    CHECK(judge_lease(redis, other_value).status == RowStatus::unexpected);
    // A refused write where theory says it lands differs.
    const LeaseJudgement fenced_anyway = judge_lease(redis, refused());
    CHECK(fenced_anyway.status == RowStatus::unexpected);
    CHECK(fenced_anyway.observed == LeaseVerdict::refuses_late_write);
}

TEST_CASE("judge_lease: with fencing an older token refused and nothing lost match; a late write "
          "that lands differs",
          "[demo_verdict]")
{
    const ServerConfig fenced = leased(LockMode::semaphore, true);
    CHECK(judge_lease(fenced, refused()).status == RowStatus::as_predicted);
    CHECK(judge_lease(fenced, lost_update()).status == RowStatus::unexpected);
    LeaseFacts newer = refused();
    newer.holder_token = 35;
    CHECK(judge_lease(fenced, newer).status == RowStatus::unexpected);
    LeaseFacts lost = refused();
    lost.final = 4;
    CHECK(judge_lease(fenced, lost).status == RowStatus::unexpected);
}

TEST_CASE("judge_lease: a pause that missed the window between check and write asks for a rerun",
          "[demo_verdict]")
{
    const ServerConfig redis = leased(LockMode::redis, false);
    LeaseFacts early = lost_update();
    early.holder_wrote = false; // its last check saw the lease gone: 503, nothing written
    const LeaseJudgement missed = judge_lease(redis, early);
    CHECK(missed.status == RowStatus::inconclusive);
    CHECK(missed.missed_window);
    LeaseFacts late = lost_update();
    late.paused_holding = false;
    CHECK(judge_lease(redis, late).missed_window);
    LeaseFacts alone = lost_update();
    alone.taken_over = false;
    const LeaseJudgement nobody = judge_lease(redis, alone);
    CHECK(nobody.status == RowStatus::inconclusive);
    CHECK_FALSE(nobody.missed_window);
}

TEST_CASE("report: Act 5 shows its rows with their why and skip lines, and counts them",
          "[demo_report]")
{
    DemoResults results;
    CHECK(format_leases(results, false).empty());
    results.leases.ran = true;
    results.leases.redis_skipped = "redis-server is not installed (apt-get install redis-server)";
    results.leases.postgres_skipped = "PostgreSQL 15 is not installed";
    LeaseRow row;
    row.config = leased(LockMode::semaphore, true);
    row.paused_pid = 4242;
    row.taker = {200, 3, 4243, 0, 0, 0, 34, 0, true};
    row.holder = {409, 0, 0, 0, 0, 0, 33, 34, false};
    row.writes = row.committed = 5;
    row.final = 5;
    row.judgement = judge_lease(row.config, refused());
    results.leases.rows.push_back(row);
    const std::string text = format_leases(results, false);
    CHECK(text.find("Act 5: leases and fencing") != std::string::npos);
    CHECK(text.find("409: token 33 < 34") != std::string::npos);
    CHECK(text.find("pid 4243, token 34") != std::string::npos);
    CHECK(text.find("Redis rows skipped: redis-server is not installed") != std::string::npos);
    CHECK(text.find("PostgreSQL row skipped: PostgreSQL 15") != std::string::npos);
    CHECK(all_as_predicted(results));
    CHECK(to_json(results)["leases"]["rows"][0]["late_write"]["status"] == 409);
    CHECK(to_json(results)["leases"]["rows"][0]["fencing"] == true);
    results.leases.rows[0].judgement.status = RowStatus::unexpected;
    CHECK_FALSE(all_as_predicted(results));
}

TEST_CASE("options: --act 5 and --act leases run Act 5 only; --act 6 is bad usage",
          "[demo_options]")
{
    const auto parse = [](std::vector<std::string> args) {
        args.insert(args.begin(), "forklock-demo");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        return parse_options(static_cast<int>(argv.size()), argv.data());
    };
    for (const char* act : {"5", "leases"}) {
        const ParsedOptions parsed = parse({"--act", act});
        REQUIRE(parsed.options);
        CHECK(parsed.options->acts == Acts::leases);
    }
    CHECK(parse({"--act", "6"}).exit_code == 2);
}
