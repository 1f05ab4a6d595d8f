#pragma once
// Act 3, two servers: two forklock masters on different ports share one data directory ("two
// machines" on one host), and the increments of one key alternate between them. Which locks
// still exclude when the processes are not one server's?

#include <filesystem>
#include <string>
#include <vector>

#include "load.h"
#include "progress.h"
#include "race_act.h"
#include "theory.h"

namespace forklock::demo {

struct TwoServerRow {
    ServerConfig config; // both servers run it
    LoadResult a;        // the increments sent to the first server
    LoadResult b;        // and to the second
    long final = 0;
    RaceJudgement judgement;
    std::string error; // a server did not start, or a query failed
    double seconds = 0;
};

// The rows: mutex --preload (loses updates), flock (safe), mutex --lock-name --lock-share
// (safe). The postgres row needs a PostgreSQL, so postgres_rows.h runs it (and its holder rows).
std::vector<ServerConfig> two_server_scenarios(const RaceSizes& sizes);

TwoServerRow run_two_servers(const std::filesystem::path& server, const ServerConfig& config,
                             const RaceSizes& sizes, Progress& progress, const std::string& label);

} // namespace forklock::demo
