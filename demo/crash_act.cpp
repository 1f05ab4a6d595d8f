#include "crash_act.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <thread>

#include <fmt/format.h>

#include "demo_server.h"
#include "holder.h"
#include "interrupt.h"
#include "os/os_error.h"
#include "server_api.h"

namespace forklock::demo {
namespace {

using namespace std::chrono_literals;

const std::string kCrashKey = "crash";
constexpr int kHoldMs = 10'000;      // the victim holds the key far longer than the act lasts
constexpr int kStuckProbeMs = 2'000; // how long the no-recovery probe waits for the lock
constexpr int kCommitsAroundCrash = 3;    // increments committed before and after the crash
constexpr auto kStepDeadline = 10s;  // holder.h's helpers wait as long

// Polls GET /workers until the killed pid is gone, the count is back and restarts grew.
void wait_for_replacement(const ServerApi& api, CrashRow& row, const WorkersSnapshot& before)
{
    const auto deadline = Clock::now() + kStepDeadline;
    while (Clock::now() < deadline) {
        const WorkersSnapshot now = retry([&] { return api.workers(); }, "GET /workers");
        const bool gone =
            std::find(now.pids.begin(), now.pids.end(), row.killed_pid) == now.pids.end();
        if (gone && now.pids.size() >= before.pids.size() && now.restarts > before.restarts) {
            for (pid_t pid : now.pids) {
                if (std::find(before.pids.begin(), before.pids.end(), pid) == before.pids.end())
                    row.new_pid = pid;
            }
            row.restarts_after = now.restarts;
            return;
        }
        sleep_or_throw(20ms);
    }
}

void crash(const std::filesystem::path& server, CrashRow& row, Progress& progress,
           const std::string& label)
{
    harness::ServerProcess process = start_server(server, row.config);
    const ServerApi api(process.port(), 1s);
    row.committed = commit(api, kCrashKey, kCommitsAroundCrash);
    // The victim: its reply never comes (its worker dies), so its increment is not committed.
    std::jthread victim([&api] {
        try {
            (void)api.increment(kCrashKey, kHoldMs, -1, std::chrono::milliseconds(kHoldMs + 5'000));
        } catch (const std::exception&) {
        }
    });
    progress.show(fmt::format("{} waiting for a worker to hold the key", label));
    // Connections that arrive together may all be accepted by the victim's thread and wait out
    // its hold; giving the victim a head start keeps the polls out of that batch.
    sleep_or_throw(50ms);
    row.killed_pid = wait_for_owner(api, kCrashKey);
    const WorkersSnapshot before = retry([&] { return api.workers(); }, "GET /workers");
    row.restarts_before = before.restarts;
    progress.show(fmt::format("{} kill -9 {}", label, row.killed_pid));
    if (::kill(row.killed_pid, SIGKILL) != 0)
        throw os_error(errno, "kill({}, SIGKILL)", row.killed_pid);
    const auto killed_at = Clock::now();
    probe_after_kill(api, kCrashKey, row, killed_at);
    wait_for_replacement(api, row, before);
    // A worker is listed as soon as it is forked, but handles TERM only once it has booted: a
    // TERM that arrives earlier is lost, and the master waits out --graceful-timeout.
    if (row.new_pid != 0)
        (void)process.wait_for_log(fmt::format("Booting worker with pid: {}", row.new_pid), 3s);
    if (row.freed) row.committed += commit(api, kCrashKey, kCommitsAroundCrash);
    row.final = retry([&] { return api.counter(kCrashKey); }, "GET /counter");
    process.stop();
}

} // namespace

void probe_after_kill(const ServerApi& api, const std::string& key, CrashRow& row,
                      Clock::time_point killed_at)
{
    const auto deadline = killed_at + kStepDeadline;
    row.probe_timeout_ms =
        predict_crash(row.config) == CrashVerdict::recovers ? 5'000 : kStuckProbeMs;
    while (Clock::now() < deadline) {
        IncrementReply reply;
        try {
            reply = api.increment(key, 0, row.probe_timeout_ms, 15s);
        } catch (const HttpError&) { // the connection may have gone to the dying worker
            sleep_or_throw(20ms);
            continue;
        }
        if (reply.status == 200) {
            row.freed = true;
            row.freed_after_ms =
                std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count();
            row.recovered_from = reply.recovered_from;
            ++row.committed;
            return;
        }
        if (reply.status == 503 && predict_crash(row.config) == CrashVerdict::stays_locked) {
            row.stuck_503 = true;
            row.stuck_owner = reply.owner_pid;
            return;
        }
    }
}

std::vector<ServerConfig> crash_scenarios()
{
    return {
        {LockMode::semaphore, true, 2, 2, true},
        {LockMode::mutex, true, 2, 2, true},
        {LockMode::flock, false, 2, 2, true},
        {LockMode::semaphore, true, 2, 2, false},
    };
}

CrashRow run_crash(const std::filesystem::path& server, const ServerConfig& config,
                   Progress& progress, const std::string& label)
{
    const auto start = Clock::now();
    CrashRow row;
    row.config = config;
    row.note = failure_of([&] {
        progress.show(fmt::format("{} starting the server", label));
        crash(server, row, progress, label);
    });
    if (row.note.empty()) {
        const CrashFacts facts{row.freed, row.stuck_503, row.new_pid != 0, row.committed,
                               row.final};
        CrashJudgement judgement = judge_crash(config, facts);
        row.observed = judgement.observed;
        row.status = judgement.status;
        row.note = std::move(judgement.note);
    }
    row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return row;
}

} // namespace forklock::demo
