// forklock-demo: the classroom demonstration. Act 1 races concurrent increments
// through every lock mode; act 2 kills a worker that holds a key; act 3 runs two servers on one
// data directory, and a holder in postgres mode killed and paused; the seed's scene
// (seed_act.h) runs Python's locks and forklock's module under gunicorn; act 5 (lease_act.h)
// pauses a holder past its lease, without and with fencing tokens. Exit 0 only when
// every row did what the theory predicts (theory.h), 1 otherwise, 2 for bad usage, 130 on Ctrl-C.

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include <sys/prctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "interrupt.h"
#include "options.h"
#include "postgres_rows.h"
#include "report.h"
#include "schedule_act.h"

namespace {

using namespace forklock::demo;

void run_race_act(const Options& options, Progress& progress, DemoResults& results)
{
    const auto scenarios = race_scenarios(options.sizes);
    const RaceReport report(scenarios, options.sizes, options.color);
    // Each row as soon as it is measured: the class reads the first while the others run.
    const auto print = [&](const std::string& text) {
        if (options.json) return;
        progress.clear();
        std::cout << text << std::flush;
    };
    print(report.head());
    for (std::size_t i = 0; i < scenarios.size(); ++i) {
        const std::string label =
            fmt::format("act 1 [{}/{}] {}:", i + 1, scenarios.size(), describe(scenarios[i]));
        results.race.push_back(
            run_race(options.server, scenarios[i], options.sizes, progress, label));
        print(report.row(results.race.back()));
    }
    progress.clear();
    print(report.tail(results.race) + "\n");
    if (!options.trace_out.empty()) {
        std::ofstream(options.trace_out) << chrome_trace(results.race).dump() << "\n";
        std::cerr << "forklock-demo: wrote the race act's trace to " << options.trace_out.string()
                  << " (open it in Perfetto or chrome://tracing)\n";
    }
}

void run_crash_act(const Options& options, Progress& progress, DemoResults& results)
{
    const auto scenarios = crash_scenarios();
    for (std::size_t i = 0; i < scenarios.size(); ++i) {
        const std::string label =
            fmt::format("act 2 [{}/{}] {}:", i + 1, scenarios.size(), describe(scenarios[i]));
        results.crash.push_back(run_crash(options.server, scenarios[i], progress, label));
    }
    progress.clear();
    if (!options.json) std::cout << format_crash(results.crash, options.color) << std::endl;
}

void run_two_servers_act(const Options& options, Progress& progress, DemoResults& results)
{
    const auto scenarios = two_server_scenarios(options.sizes);
    const int rows = static_cast<int>(scenarios.size()) + kPostgresRows;
    for (std::size_t i = 0; i < scenarios.size(); ++i) {
        const std::string label =
            fmt::format("act 3 [{}/{}] {}:", i + 1, rows, describe(scenarios[i]));
        results.two_servers.push_back(
            run_two_servers(options.server, scenarios[i], options.sizes, progress, label));
    }
    PostgresRows postgres = run_postgres_rows(options.server, options.sizes, progress,
                                              static_cast<int>(scenarios.size()) + 1, rows);
    for (auto& row : postgres.two_servers) results.two_servers.push_back(std::move(row));
    results.postgres_crash = std::move(postgres.crash);
    results.postgres_pause = std::move(postgres.pause);
    results.postgres_skipped = std::move(postgres.skipped);
    progress.clear();
    if (options.json) return;
    std::cout << format_two_servers(results.two_servers, options.sizes, options.color,
                                    results.postgres_skipped)
              << std::endl;
    if (const std::string holders =
            format_postgres_holders(results.postgres_crash, results.postgres_pause, options.color);
        !holders.empty())
        std::cout << holders << std::endl;
}

void run_seed_act(const Options& options, Progress& progress, DemoResults& results)
{
    results.seed = run_seed_act(options.seed, options.sizes, progress);
    progress.clear();
    if (!options.json) std::cout << format_seed(results.seed, options.sizes, options.color) << std::endl;
}

void run_lease_act(const Options& options, Progress& progress, DemoResults& results)
{
    const bool act3_ran = options.acts == Acts::all;
    results.leases = run_lease_act(options.server, progress, act3_ran);
    progress.clear();
    if (!options.json) std::cout << format_leases(results, options.color) << std::endl;
}

int run(const Options& options)
{
    const auto start = std::chrono::steady_clock::now();
    Progress progress(Progress::stderr_is_terminal());
    DemoResults results;
    results.sizes = options.sizes;
    const auto runs = [&](Acts act) { return options.acts == Acts::all || options.acts == act; };
    if (runs(Acts::race)) run_race_act(options, progress, results);
    if (runs(Acts::crash)) run_crash_act(options, progress, results);
    if (runs(Acts::two_servers)) run_two_servers_act(options, progress, results);
    if (runs(Acts::seed)) run_seed_act(options, progress, results);
    if (runs(Acts::leases)) run_lease_act(options, progress, results);
    results.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options.json)
        std::cout << to_json(results).dump(2) << std::endl;
    else
        std::cout << format_summary(results, options.color) << std::flush;
    return all_as_predicted(results) ? 0 : 1;
}

} // namespace

int main(int argc, char** argv)
{
    const ParsedOptions parsed = parse_options(argc, argv);
    if (!parsed.options) return parsed.exit_code;
    const Options& options = *parsed.options;
    if (::access(options.server.c_str(), X_OK) != 0) {
        std::cerr << "forklock-demo: no server binary at " << options.server
                  << " (build it, or pass --server PATH)\n";
        return 2;
    }
    if (!options.trace_out.empty() && !std::ofstream(options.trace_out, std::ios::app)) {
        std::cerr << "forklock-demo: cannot write --trace-out " << options.trace_out.string()
                  << ": " << std::strerror(errno) << "\n";
        return 2;
    }
    install_interrupt_handlers();
    // Workers whose master died re-parent to us, so harness::ServerProcess can reap them.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    try {
        if (!options.schedule.empty()) return run_schedule(options);
        return run(options);
    } catch (const Interrupted&) {
        std::cerr << "\nforklock-demo: interrupted; every server it started is stopped\n";
        return 130;
    } catch (const std::exception& error) {
        std::cerr << "forklock-demo: " << error.what() << "\n";
        return 1;
    }
}
