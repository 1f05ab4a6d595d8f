#pragma once
// The demo's output: the acts as text tables (coloured on a terminal) or as one JSON
// document. Pure functions of the measured rows, unit-tested without a server.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "crash_act.h"
#include "lease_act.h"
#include "pause_row.h"
#include "race_act.h"
#include "seed_act.h"
#include "table.h"
#include "two_servers_act.h"

namespace forklock::demo {

struct DemoResults {
    RaceSizes sizes;
    std::vector<RaceRow> race;
    std::vector<CrashRow> crash;
    std::vector<TwoServerRow> two_servers; // the postgres row last, when it ran
    std::vector<CrashRow> postgres_crash;  // Act 3's holder rows in postgres mode
    std::vector<PauseRow> postgres_pause;
    std::string postgres_skipped; // why Act 3's postgres rows did not run; empty when they ran
    SeedScene seed;               // the seed's scene (Python under gunicorn)
    LeaseAct leases;              // Act 5, leases and fencing, last
    double seconds = 0;
};

// Act 1 printed as its rows are measured: head() before the first (the title, what the columns
// mean, the table's header), row() for each, tail() after the last (the interleavings the trace
// found). The columns are as wide as the widest cell any of `scenarios` can have, so the rows
// printed one by one line up. format_race() is the three joined.
class RaceReport final {
public:
    RaceReport(const std::vector<ServerConfig>& scenarios, const RaceSizes& sizes, bool color);
    [[nodiscard]] std::string head() const;
    [[nodiscard]] std::string row(const RaceRow& row) const;
    [[nodiscard]] std::string tail(const std::vector<RaceRow>& rows) const;

private:
    RaceSizes sizes_;
    bool color_;
    Table table_;
};
std::string format_race(const std::vector<RaceRow>& rows, const RaceSizes& sizes, bool color);
std::string format_crash(const std::vector<CrashRow>& rows, bool color);
// Act 3's two-server table; `postgres_skipped` (non-empty) adds the one line saying why its
// PostgreSQL rows did not run.
std::string format_two_servers(const std::vector<TwoServerRow>& rows, const RaceSizes& sizes,
                               bool color, const std::string& postgres_skipped = {});
// Act 3's PostgreSQL holders, killed and paused; empty when neither row ran.
std::string format_postgres_holders(const std::vector<CrashRow>& crash,
                                    const std::vector<PauseRow>& pause, bool color);
// The seed's scene: its title ("Act 4, the seed: Python under gunicorn"), its two tables, or
// the one line saying why it was skipped.
std::string seed_title();
std::string format_seed(const SeedScene& scene, const RaceSizes& sizes, bool color);

// Act 5: its title, the paused postgres holder (Act 3's row when it ran), the lease table, and a
// skip line for each part that did not run. Empty when the act did not run.
std::string format_leases(const DemoResults& results, bool color);
// Act 3's paused-holder table (also Act 5's first row).
std::string pause_table(const std::vector<PauseRow>& rows, bool color);

// The closing line: every row as predicted, or which were not.
std::string format_summary(const DemoResults& results, bool color);

nlohmann::json to_json(const DemoResults& results);
// One crash row, with its server configuration and prediction (Act 2's, Act 3's, the seed's).
nlohmann::json crash_json(const CrashRow& row);
nlohmann::json seed_json(const SeedScene& scene);
nlohmann::json leases_json(const LeaseAct& act);
nlohmann::json pause_json(const PauseRow& row);
nlohmann::json config_json(const ServerConfig& config);

// The race act's Chrome traces in one document (--trace-out), each worker's track named after
// its row; rows without a kept trace add nothing.
nlohmann::json chrome_trace(const std::vector<RaceRow>& rows);

// True when there is at least one row and every row is as predicted: the exit code's meaning.
bool all_as_predicted(const DemoResults& results);

// "after 3.2 ms", "still locked after 2 s — like gunicorn with multiprocessing.Lock", ...
std::string describe_recovery(const CrashRow& row);

} // namespace forklock::demo
