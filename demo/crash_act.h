#pragma once
// Act 2, the crash: a worker holding a key is SIGKILLed. Is the key usable again, and after how
// long? Did the master replace the worker? Is every committed increment in the counter?

#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

#include "progress.h"
#include "server_api.h"
#include "theory.h"

namespace forklock::demo {

struct CrashRow {
    ServerConfig config;
    pid_t killed_pid = 0;
    bool freed = false;        // an increment on the key succeeded after the kill
    double freed_after_ms = 0; // from the kill to that success
    pid_t recovered_from = 0;  // as reported by the server on that success
    bool stuck_503 = false;    // the probe timed out with 503 (the key stayed locked)
    pid_t stuck_owner = 0;     // owner_pid in that 503
    int probe_timeout_ms = 0;
    pid_t new_pid = 0; // the worker that replaced the killed one
    int restarts_before = 0;
    int restarts_after = 0;
    int committed = 0; // 2xx increments
    long final = -1;
    CrashVerdict observed = CrashVerdict::stays_locked;
    RowStatus status = RowStatus::inconclusive;
    std::string note;
    double seconds = 0;
};

std::vector<ServerConfig> crash_scenarios();

// After the holder of `key` was killed at `killed_at`: increments of the key until one succeeds
// (recovery: row.freed, freed_after_ms, recovered_from, committed) or, when row.config predicts
// the key stays locked, one probe that must time out with 503 (row.stuck_503, stuck_owner). Any
// server that speaks the increment API will do (the seed's gunicorn app too).
void probe_after_kill(const ServerApi& api, const std::string& key, CrashRow& row,
                      Clock::time_point killed_at);

CrashRow run_crash(const std::filesystem::path& server, const ServerConfig& config,
                   Progress& progress, const std::string& label);

} // namespace forklock::demo
