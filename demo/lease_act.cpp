#include "lease_act.h"

#include <memory>

#include <fmt/format.h>

#include "demo_server.h"
#include "harness/redis_server.h"
#include "holder.h"
#include "interrupt.h"
#include "postgres_rows.h"
#include "race_act.h"
#include "stopped.h"

namespace forklock::demo {
namespace {

using namespace std::chrono_literals;

const std::string kLeaseKey = "lease";
constexpr int kCommitsAroundLease = 2;
constexpr int kTakerTimeoutMs = 5'000;
constexpr int kMaxAttempts = 3;

double ms_between(Clock::time_point from, Clock::time_point to)
{
    return std::chrono::duration<double, std::milli>(to - from).count();
}

// The holder stopped inside its write delay, until the key has been taken and committed by the
// other worker and at least kLeasePauseMs have passed; SIGCONT also when this throws.
void pause_past_lease(const ServerApi& api, LeaseRow& row, const PendingReply& holder,
                      LeaseFacts& facts, Progress& progress, const std::string& label)
{
    progress.show(fmt::format("{} kill -STOP {}", label, row.paused_pid));
    Stopped stopped(row.paused_pid);
    facts.paused_holding = stopped.wait_stopped(2s) && !holder.answered();
    progress.show(fmt::format("{} another worker waits out the {} ms lease", label, kLeaseMs));
    row.taker = api.increment(kLeaseKey, 0, kTakerTimeoutMs, 10s);
    row.taken_ms = ms_between(stopped.stopped_at(), Clock::now());
    facts.taken_over = row.taker.status == 200 && row.taker.pid != row.paused_pid;
    const auto until = stopped.stopped_at() + std::chrono::milliseconds(kLeasePauseMs);
    if (const auto now = Clock::now(); now < until) sleep_or_throw(until - now);
    progress.show(fmt::format("{} kill -CONT {}", label, row.paused_pid));
    stopped.resume();
    row.paused_ms = ms_between(stopped.stopped_at(), Clock::now());
}

LeaseFacts run_once(const std::filesystem::path& server, LeaseRow& row, Progress& progress,
                    const std::string& label)
{
    LeaseFacts facts;
    harness::ServerProcess process = start_server(server, row.config);
    const ServerApi api(process.port(), 1s);
    row.committed = commit(api, kLeaseKey, kCommitsAroundLease);
    const PendingReply holder([&api] {
        return api.increment(kLeaseKey, 0, kTakerTimeoutMs, 20s, kLeaseWriteDelayMs);
    });
    progress.show(fmt::format("{} waiting for a worker to hold the key", label));
    sleep_or_throw(50ms); // as in Act 3: the polls stay out of the holder's accept batch
    row.paused_pid = wait_for_owner(api, kLeaseKey);
    pause_past_lease(api, row, holder, facts, progress, label);
    if (holder.wait(10s)) row.holder = holder.reply();
    row.value_after_late = retry([&] { return api.counter(kLeaseKey); }, "GET /counter");
    row.committed += (row.taker.status == 200 ? 1 : 0) + (row.holder.status == 200 ? 1 : 0);
    row.committed += commit(api, kLeaseKey, kCommitsAroundLease);
    row.writes = row.committed + (row.holder.written && row.holder.status != 200 ? 1 : 0);
    row.final = retry([&] { return api.counter(kLeaseKey); }, "GET /counter");
    row.overlaps = retry([&] { return api.analysis(kLeaseKey); }, "GET /analysis").overlaps;
    process.stop();
    facts.holder_status = row.holder.status;
    facts.holder_wrote = row.holder.written;
    facts.taker_value = row.taker.value;
    facts.value_after_late = row.value_after_late;
    facts.holder_token = row.holder.token;
    facts.taker_token = row.taker.token;
    facts.overlaps = row.overlaps;
    facts.committed = row.committed;
    facts.writes = row.writes;
    facts.final = row.final;
    return facts;
}

// One row, rerun (at most kMaxAttempts) only when the pause missed the check-to-write window.
LeaseRow run_lease(const std::filesystem::path& server, const ServerConfig& config,
                   Progress& progress, const std::string& label)
{
    const auto start = Clock::now();
    LeaseRow row;
    do {
        const int attempts = row.attempts + 1;
        row = LeaseRow{};
        row.config = config;
        row.attempts = attempts;
        LeaseFacts facts;
        row.judgement.note = failure_of([&] {
            progress.show(fmt::format("{} starting the server", label));
            facts = run_once(server, row, progress, label);
        });
        if (row.judgement.note.empty()) row.judgement = judge_lease(config, facts);
    } while (row.judgement.missed_window && row.attempts < kMaxAttempts);
    row.seconds = ms_between(start, Clock::now()) / 1000;
    return row;
}

std::string label(int row, int rows, const ServerConfig& config)
{
    return fmt::format("act {} [{}/{}] {}:", kLeaseAct, row, rows, describe(config));
}

std::string redis_unavailable()
{
#ifdef FORKLOCK_DEMO_NO_HIREDIS
    return "this demo was built without hiredis (apt-get install libhiredis-dev redis-server, "
           "then meson setup --reconfigure build)";
#else
    if (!harness::RedisServer::available())
        return "redis-server is not installed (apt-get install redis-server)";
    return {};
#endif
}

// The redis rows on one throwaway redis-server; every row inconclusive when it does not start.
void run_redis_rows(const std::filesystem::path& server, Progress& progress, LeaseAct& act,
                    const std::vector<ServerConfig>& scenarios, int rows)
{
    progress.show(fmt::format("act {} starting redis-server", kLeaseAct));
    std::unique_ptr<harness::RedisServer> redis;
    std::string error;
    try {
        redis = std::make_unique<harness::RedisServer>();
    } catch (const std::exception& e) {
        throw_if_interrupted();
        error = e.what();
    }
    for (std::size_t i = 0; i < scenarios.size(); ++i) {
        if (scenarios[i].mode != LockMode::redis) continue;
        if (!redis) {
            LeaseRow row;
            row.config = scenarios[i];
            row.judgement.note = "redis-server did not start: " + error;
            act.rows.push_back(row);
            continue;
        }
        ServerConfig config = scenarios[i];
        config.lock_url = redis->url();
        act.rows.push_back(run_lease(server, config, progress,
                                     label(static_cast<int>(i) + 2, rows, scenarios[i])));
    }
}

} // namespace

std::vector<ServerConfig> lease_scenarios()
{
    std::vector<ServerConfig> out;
    for (const LockMode mode : {LockMode::redis, LockMode::semaphore})
        for (const bool fencing : {false, true}) {
            ServerConfig config{mode, true, 2, 1};
            config.lease_ms = kLeaseMs;
            config.fencing = fencing;
            out.push_back(config);
        }
    return out;
}

LeaseAct run_lease_act(const std::filesystem::path& server, Progress& progress, bool act3_ran)
{
    const std::vector<ServerConfig> scenarios = lease_scenarios();
    const int rows = static_cast<int>(scenarios.size()) + 1;
    LeaseAct act;
    act.ran = true;
    act.postgres_from_act3 = act3_ran;
    if (!act3_ran) {
        PostgresRows postgres =
            run_postgres_pause(server, progress, fmt::format("act {} [1/{}]", kLeaseAct, rows));
        act.postgres = std::move(postgres.pause);
        act.postgres_skipped = std::move(postgres.skipped);
    }
    act.redis_skipped = redis_unavailable();
    if (act.redis_skipped.empty()) run_redis_rows(server, progress, act, scenarios, rows);
    for (std::size_t i = 0; i < scenarios.size(); ++i)
        if (scenarios[i].mode != LockMode::redis)
            act.rows.push_back(run_lease(server, scenarios[i], progress,
                                         label(static_cast<int>(i) + 2, rows, scenarios[i])));
    return act;
}

} // namespace forklock::demo
