#include "pause_row.h"

#include <fmt/format.h>

#include "demo_server.h"
#include "holder.h"
#include "interrupt.h"
#include "server_api.h"
#include "stopped.h"

namespace forklock::demo {
namespace {

using namespace std::chrono_literals;

const std::string kPauseKey = "pause";
constexpr int kProbes = 3;
constexpr int kProbeTimeoutMs = 300;
constexpr int kFreedProbeMs = 2'000;
constexpr int kCommitsAroundPause = 2;

double ms_since(Clock::time_point since)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// Increments with timeout_ms while the holder is stopped: at least kProbes, and until one has
// been answered after the holder's own hold would have ended (only the pause holds the key then).
void probe_while_paused(const ServerApi& api, PauseRow& row, Clock::time_point stopped_at)
{
    row.probe_timeout_ms = kProbeTimeoutMs;
    const auto hold_ended = stopped_at + std::chrono::milliseconds(kPauseHoldMs);
    while (row.probes < kProbes || (Clock::now() < hold_ended + 1s && row.refused_past_hold == 0)) {
        ++row.probes;
        try {
            const IncrementReply reply = api.increment(kPauseKey, 0, kProbeTimeoutMs, 3s);
            if (reply.status == 503 && reply.owner_pid == row.paused_pid) {
                ++row.refused;
                row.refused_past_hold += Clock::now() > hold_ended ? 1 : 0;
            } else if (reply.status == 200) {
                ++row.admitted;
                ++row.committed;
            } else {
                ++row.other_replies;
            }
        } catch (const HttpError&) { // landed on the stopped worker, or no answer in time
            ++row.other_replies;
        }
    }
}

// After SIGCONT: the holder's reply, then one increment that must get the key.
void after_resume(const ServerApi& api, PauseRow& row, const PendingReply& holder,
                  Clock::time_point resumed_at)
{
    if (holder.wait(10s) && holder.reply().status == 200) {
        row.holder_finished = true;
        row.holder_finished_after_ms = ms_since(resumed_at);
        ++row.committed;
    }
    const IncrementReply reply =
        retry([&] { return api.increment(kPauseKey, 0, kFreedProbeMs, 5s); }, "POST /counter/pause");
    if (reply.status == 200) {
        row.freed_after = true;
        row.freed_after_ms = ms_since(resumed_at);
        ++row.committed;
    }
}

void pause(const std::filesystem::path& server, PauseRow& row, Progress& progress,
           const std::string& label)
{
    harness::ServerProcess process = start_server(server, row.config);
    const ServerApi api(process.port(), 1s);
    row.committed = commit(api, kPauseKey, kCommitsAroundPause);
    const PendingReply holder([&api] { return api.increment(kPauseKey, kPauseHoldMs, -1, 20s); });
    progress.show(fmt::format("{} waiting for a worker to hold the key", label));
    sleep_or_throw(50ms); // as in Act 2: the polls stay out of the holder's accept batch
    row.paused_pid = wait_for_owner(api, kPauseKey);
    Clock::time_point resumed_at;
    {
        progress.show(fmt::format("{} kill -STOP {}", label, row.paused_pid));
        Stopped stopped(row.paused_pid);
        row.paused_holding = stopped.wait_stopped(2s) && !holder.answered();
        probe_while_paused(api, row, stopped.stopped_at());
        progress.show(fmt::format("{} kill -CONT {}", label, row.paused_pid));
        stopped.resume();
        resumed_at = Clock::now();
        row.paused_ms =
            std::chrono::duration<double, std::milli>(resumed_at - stopped.stopped_at()).count();
    }
    after_resume(api, row, holder, resumed_at);
    row.committed += commit(api, kPauseKey, kCommitsAroundPause);
    row.final = retry([&] { return api.counter(kPauseKey); }, "GET /counter");
    process.stop();
}

} // namespace

PauseRow run_pause(const std::filesystem::path& server, const ServerConfig& config,
                   Progress& progress, const std::string& label)
{
    const auto start = Clock::now();
    PauseRow row;
    row.config = config;
    row.note = failure_of([&] {
        progress.show(fmt::format("{} starting the server", label));
        pause(server, row, progress, label);
    });
    if (row.note.empty()) {
        const PauseFacts facts{row.paused_holding,    row.probes,    row.refused,
                               row.refused_past_hold, row.admitted,  row.holder_finished,
                               row.freed_after,       row.committed, row.final};
        PauseJudgement judgement = judge_pause(config, facts);
        row.observed = judgement.observed;
        row.status = judgement.status;
        row.note = std::move(judgement.note);
    }
    row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return row;
}

} // namespace forklock::demo
