#include "options.h"

#include <cstdlib>
#include <iostream>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace forklock::demo {
namespace {

void add_size_flags(CLI::App& app, RaceSizes& sizes)
{
    // The lower bounds keep "loses updates" certain: a hold time so that overlapping
    // increments interleave, and at least two clients per worker.
    app.add_option("-w,--workers", sizes.workers, "workers in the multi-worker rows")
        ->check(CLI::Range(2, 64));
    app.add_option("--threads", sizes.threads, "threads in the one-worker thread row")
        ->check(CLI::Range(2, 64));
    app.add_option("-n,--requests", sizes.requests, "increments per row")
        ->check(CLI::Range(10, 100000));
    app.add_option("-c,--concurrency", sizes.concurrency, "concurrent connections")
        ->check(CLI::Range(2, 256));
    app.add_option("--hold-ms", sizes.hold_ms, "ms each increment holds the lock")
        ->check(CLI::Range(1, 1000));
}

// --quick sets every size the command line did not set explicitly.
void apply_quick_sizes(const CLI::App& app, RaceSizes& sizes)
{
    const RaceSizes small = quick_sizes();
    if (app.count("--workers") == 0) sizes.workers = small.workers;
    if (app.count("--threads") == 0) sizes.threads = small.threads;
    if (app.count("--requests") == 0) sizes.requests = small.requests;
    if (app.count("--concurrency") == 0) sizes.concurrency = small.concurrency;
    if (app.count("--hold-ms") == 0) sizes.hold_ms = small.hold_ms;
}

} // namespace

RaceSizes quick_sizes() { return RaceSizes{4, 4, 48, 8, 3}; }

std::filesystem::path default_server_path()
{
    std::error_code error;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
    if (error) return "forklock";
    // In the build tree: build/demo/ beside build/server/; installed: both in bin/.
    const auto built = (self.parent_path() / ".." / "server" / "forklock").lexically_normal();
    if (std::filesystem::exists(built, error)) return built;
    return self.parent_path() / "forklock";
}

ParsedOptions parse_options(int argc, char** argv)
{
    CLI::App app{"forklock-demo: which lock modes lose updates across forked workers, and what "
                 "happens when a worker dies holding a lock."};
    Options options;
    bool quick = false;
    bool no_color = false;
    std::string acts = "all";
    std::string server;
    std::string python;
    const std::string seed_act = std::to_string(kSeedAct);
    const std::string lease_act = std::to_string(kLeaseAct);
    add_size_flags(app, options.sizes);
    app.add_option("--act", acts,
                   fmt::format("which act to run: 1 (race), 2 (crash), 3 (two servers), {} or "
                               "seed (the seed: Python under gunicorn), {} or leases (leases and "
                               "fencing) or all",
                               seed_act, lease_act))
        ->check(CLI::IsMember(std::vector<std::string>{"1", "2", "3", seed_act, "seed",
                                                       lease_act, "leases", "all"}));
    app.add_flag("--quick", quick, "small sizes (for the test suite); explicit flags still win");
    app.add_flag("--json", options.json, "print one JSON document instead of tables");
    app.add_flag("--no-color", no_color, "plain text even on a terminal");
    app.add_option("--server", server, "the forklock binary (default: built next to the demo)");
    app.add_option("--python", python,
                   "the Python with gunicorn for the seed's scene (default: /usr/bin/python3)");
    app.add_option("--trace-out", options.trace_out,
                   "write the race act's trace of critical sections to FILE (Chrome Trace Event "
                   "JSON, for Perfetto or chrome://tracing)");
    app.add_option("--schedule", options.schedule,
                   "replay a step schedule such as \"A:read B:read A:write B:write\" on a server "
                   "of 3 workers (docs/stepping.md), print the outcome and stop");
    app.add_option("--schedule-mode", options.schedule_mode, "the lock mode of --schedule")
        ->check(CLI::IsMember({"none", "thread", "semaphore", "mutex", "flock"}));
    app.add_flag("--schedule-preload", options.schedule_preload, "--schedule with --preload");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& help) {
        return {std::nullopt, app.exit(help)};
    } catch (const CLI::ParseError& error) {
        app.exit(error);
        return {std::nullopt, 2};
    }
    if (quick) apply_quick_sizes(app, options.sizes);
    options.sizes.keep_trace = !options.trace_out.empty();
    options.acts = acts == "1"   ? Acts::race
                   : acts == "2" ? Acts::crash
                   : acts == "3" ? Acts::two_servers
                   : acts == seed_act || acts == "seed"    ? Acts::seed
                   : acts == lease_act || acts == "leases" ? Acts::leases
                                                           : Acts::all;
    options.color = !no_color && std::getenv("NO_COLOR") == nullptr && ::isatty(STDOUT_FILENO) == 1;
    options.seed = default_seed_setup();
    if (!python.empty()) options.seed.python = python;
    options.server = server.empty() ? default_server_path() : std::filesystem::path(server);
    return {std::move(options), 0};
}

} // namespace forklock::demo
