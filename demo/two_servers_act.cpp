#include "two_servers_act.h"

#include <exception>
#include <thread>

#include <fmt/format.h>

#include "harness/temp_dir.h"
#include "interrupt.h"
#include "server_api.h"

namespace forklock::demo {
namespace {

const std::string kTwoServersKey = "two-servers";

// Each server gets half the requests and half the clients, at the same time: every increment of
// one server can overlap one of the other's.
std::pair<LoadResult, LoadResult> fire_at_both(const harness::ServerProcess& a,
                                               const harness::ServerProcess& b,
                                               const RaceSizes& sizes,
                                               const std::function<void(int)>& progress)
{
    const int half = sizes.concurrency / 2;
    const LoadPlan to_a{a.port(), kTwoServersKey, sizes.requests / 2, half, sizes.hold_ms};
    const LoadPlan to_b{b.port(), kTwoServersKey, sizes.requests - sizes.requests / 2,
                        sizes.concurrency - half, sizes.hold_ms};
    LoadResult from_b;
    std::exception_ptr b_failed;
    std::thread other([&] {
        try {
            from_b = fire_increments(to_b, [](int) {});
        } catch (...) {
            b_failed = std::current_exception();
        }
    });
    LoadResult from_a;
    try {
        from_a = fire_increments(to_a, progress);
    } catch (...) {
        other.join();
        throw;
    }
    other.join();
    if (b_failed) std::rethrow_exception(b_failed);
    return {std::move(from_a), std::move(from_b)};
}

TwoServerRow measure_two_servers(const std::filesystem::path& server, const ServerConfig& config,
                                 const RaceSizes& sizes, Progress& progress, const std::string& label)
{
    TwoServerRow row;
    row.config = config;
    const harness::TempDir data("forklock-demo-data");
    progress.show(fmt::format("{} starting two servers", label));
    harness::ServerProcess a = start_server(server, config, data.path());
    harness::ServerProcess b = start_server(server, config, data.path());
    std::tie(row.a, row.b) = fire_at_both(a, b, sizes, [&](int done) {
        progress.show(
            fmt::format("{} {}/{} increments on server A", label, done, sizes.requests / 2));
    });
    row.final = ServerApi(a.port()).counter(kTwoServersKey);
    progress.show(fmt::format("{} stopping the servers", label));
    b.stop();
    a.stop();
    return row;
}

} // namespace

std::vector<ServerConfig> two_server_scenarios(const RaceSizes& sizes)
{
    const int w = std::max(2, sizes.workers / 2);
    ServerConfig named{LockMode::mutex, false, w, 1, true, demo_lock_name("two-servers")};
    named.lock_share = true;
    return {
        {LockMode::mutex, true, w, 1, true},
        {LockMode::flock, false, w, 1, true},
        named,
    };
}

TwoServerRow run_two_servers(const std::filesystem::path& server, const ServerConfig& config,
                             const RaceSizes& sizes, Progress& progress, const std::string& label)
{
    const auto start = Clock::now();
    TwoServerRow row;
    row.config = config;
    row.error = failure_of(
        [&] { row = measure_two_servers(server, config, sizes, progress, label); });
    const TwoServerCounts counts{row.a.sent + row.b.sent,
                                 row.a.ok + row.b.ok,
                                 row.a.errors + row.b.errors,
                                 row.final,
                                 row.a.ok,
                                 row.b.ok,
                                 row.a.waited + row.b.waited};
    row.judgement = judge_two_servers(config, counts);
    if (!row.error.empty()) {
        row.judgement.status = RowStatus::inconclusive;
        row.judgement.note = row.error;
    }
    row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return row;
}

} // namespace forklock::demo
