#pragma once
// Act 1, the race: one fresh server per configuration, concurrent increments of one key, and
// the counter compared with the number of committed increments.

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "load.h"
#include "progress.h"
#include "theory.h"

namespace forklock::demo {

struct RaceSizes {
    int workers = 4;
    int threads = 4;
    int requests = 200;
    int concurrency = 16;
    int hold_ms = 3;
    bool keep_trace = false; // keep each row's Chrome trace (--trace-out)
};

struct RaceRow {
    ServerConfig config;
    LoadResult load;
    long final = 0;
    TraceWitness witness;    // what the server's trace saw (GET /analysis)
    std::string trace_error; // why the trace could not be read, if it could not
    nlohmann::json chrome;   // the row's Chrome trace events, with sizes.keep_trace
    RaceJudgement judgement;
    std::string error; // the server did not start, or a query failed
    double seconds = 0;
};

// The table's rows, in teaching order: none, thread (many workers, then one), semaphore and
// mutex without then with --preload, then without --preload but with --lock-name, flock.
std::vector<ServerConfig> race_scenarios(const RaceSizes& sizes);

// A --lock-name for one of this demo's servers: its pid in it, so two demos never meet.
std::string demo_lock_name(const std::string& what);

// One word or flag per config for labels: "semaphore --preload -w 4".
std::string describe(const ServerConfig& config);

RaceRow run_race(const std::filesystem::path& server, const ServerConfig& config,
                 const RaceSizes& sizes, Progress& progress, const std::string& label);

} // namespace forklock::demo
