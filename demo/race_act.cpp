#include "race_act.h"

#include <unistd.h>

#include <fmt/format.h>

#include "interrupt.h"
#include "server_api.h"

namespace forklock::demo {
namespace {

const std::string kRaceKey = "race";

RaceRow measure(const std::filesystem::path& server, const ServerConfig& config,
                const RaceSizes& sizes, Progress& progress, const std::string& label)
{
    RaceRow row;
    row.config = config;
    progress.show(fmt::format("{} starting the server", label));
    harness::ServerProcess process = start_server(server, config);
    const LoadPlan plan{process.port(), kRaceKey, sizes.requests, sizes.concurrency, sizes.hold_ms};
    row.load = fire_increments(plan, [&](int done) {
        progress.show(fmt::format("{} {}/{} increments", label, done, sizes.requests));
    });
    const ServerApi api(process.port());
    row.final = api.counter(kRaceKey);
    try {
        row.witness = api.analysis(kRaceKey);
        if (sizes.keep_trace) row.chrome = api.chrome_trace()["traceEvents"];
    } catch (const HttpError& error) {
        row.trace_error = error.what();
    }
    progress.show(fmt::format("{} stopping the server", label));
    process.stop();
    return row;
}

} // namespace

std::string demo_lock_name(const std::string& what)
{
    return fmt::format("demo-{}-{}", ::getpid(), what);
}

std::vector<ServerConfig> race_scenarios(const RaceSizes& sizes)
{
    const int w = sizes.workers;
    return {
        {LockMode::none, false, w, 1, true},
        {LockMode::thread, true, w, 1, true},
        {LockMode::thread, false, 1, sizes.threads, true},
        {LockMode::semaphore, false, w, 1, true},
        {LockMode::semaphore, true, w, 1, true},
        {LockMode::mutex, false, w, 1, true},
        {LockMode::mutex, true, w, 1, true},
        {LockMode::semaphore, false, w, 1, true, demo_lock_name("semaphore")},
        {LockMode::mutex, false, w, 1, true, demo_lock_name("mutex")},
        {LockMode::flock, false, w, 1, true},
    };
}

std::string describe(const ServerConfig& config)
{
    std::string text(to_string(config.mode));
    if (config.preload) text += " --preload";
    if (!config.lock_recovery) text += " --no-lock-recovery";
    if (!config.lock_name.empty()) text += " --lock-name";
    if (config.lock_share) text += " --lock-share";
    if (!config.lock_url.empty()) text += " --lock-url";
    if (config.lease_ms > 0) text += fmt::format(" --lock-lease-ms {}", config.lease_ms);
    if (config.fencing) text += " --fencing";
    text += fmt::format(" -w {}", config.workers);
    if (config.threads > 1) text += fmt::format(" --threads {}", config.threads);
    return text;
}

RaceRow run_race(const std::filesystem::path& server, const ServerConfig& config,
                 const RaceSizes& sizes, Progress& progress, const std::string& label)
{
    const auto start = Clock::now();
    RaceRow row;
    row.config = config;
    row.error = failure_of([&] { row = measure(server, config, sizes, progress, label); });
    const RaceCounts counts{row.load.sent,
                            row.load.ok,
                            row.load.errors,
                            row.final,
                            static_cast<int>(row.load.pids.size()),
                            row.load.waited,
                            row.trace_error.empty() ? std::optional<TraceWitness>(row.witness)
                                                    : std::nullopt};
    row.judgement = judge_race(config, counts);
    if (!row.error.empty()) {
        row.judgement.status = RowStatus::inconclusive;
        row.judgement.note = row.error;
    }
    row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return row;
}

} // namespace forklock::demo
