#pragma once
// The config file's two jobs after parse_options() has read it (options.h): --print-config's
// text, and what a HUP makes of the file read again. Pure functions of their arguments: no
// file, process or lock is touched here.

#include <optional>
#include <string>
#include <vector>

#include "app/options.h"
#include "app/scoreboard.h"

namespace forklock {

// --print-config: one `key = value  # source` line per setting, after a comment saying what the
// text is. CLI11 reads it back with -c FILE (trailing comments are allowed) to the same options.
std::string format_settings(const std::vector<Setting>& settings);

// What a HUP makes of the config file read again, with the same command line. Only the keys whose
// resolved value changed since the last load are applied, so what TTIN/TTOU or /control/config
// changed at run time stays unless the file changed that same key.
struct ReloadPlan {
    // The running options with the changed keys' values, except the four below.
    Options next;
    // Lock mode, preload, workers, threads: applied the way /control/config's are (a new lock
    // table with --preload, new workers, the old ones drain). Also set, empty, when lock-slots,
    // lock-url or no-lock-recovery changed: the next table must be made with them.
    std::optional<ConfigChange> change;
    std::vector<std::string> applied; // "workers: 2 -> 4", one per key
    // Keys a HUP cannot change (the bound address, the named table, the data directory...):
    // "bind: 127.0.0.1:8000 -> 127.0.0.1:9000", one per changed key; their old value stays.
    std::vector<std::string> need_restart;
    // The settings in force, for the next HUP to compare with: the file's, except that the keys
    // needing a restart keep their running value (so each HUP says so again).
    std::vector<Setting> settings;
};

ReloadPlan plan_reload(const Options& running, const std::vector<Setting>& loaded,
                       const ParseResult& fresh);

} // namespace forklock
