#pragma once
// The demo's command line.

#include <filesystem>
#include <optional>
#include <string>

#include "lease_act.h"
#include "race_act.h"
#include "seed_act.h"

namespace forklock::demo {

enum class Acts { race, crash, two_servers, seed, leases, all };

struct Options {
    RaceSizes sizes;
    Acts acts = Acts::all;
    bool json = false;
    bool color = true; // false with --no-color, NO_COLOR set, or stdout not a terminal
    std::filesystem::path server;
    SeedSetup seed; // --python: the interpreter of the seed's scene
    std::filesystem::path trace_out; // --trace-out: the race act's Chrome trace; empty: none
    std::string schedule;            // --schedule: replay it (schedule_act.h) instead of the acts
    std::string schedule_mode = "thread";
    bool schedule_preload = false;
};

// Sizes for the test suite: a clear result in a few seconds.
RaceSizes quick_sizes();

// Parses argv. Returns the options, or the exit code to return at once: 0 after --help, 2 for
// bad usage (with the message already printed).
struct ParsedOptions {
    std::optional<Options> options;
    int exit_code = 0;
};
ParsedOptions parse_options(int argc, char** argv);

// <dir of /proc/self/exe>/../server/forklock: where meson builds the server next to the demo.
std::filesystem::path default_server_path();

} // namespace forklock::demo
