#pragma once
// Act 3's PostgreSQL rows, on one throwaway PostgreSQL 15 for the act (harness/pg_cluster.h: a
// Unix socket in a temporary directory, run as `nobody` under root): two servers in postgres
// mode on one data directory (safe: one database server), a holder killed with SIGKILL (is the
// key usable again, and how fast) and a holder paused with SIGSTOP (the lock lives as long as
// its session). The cluster is stopped and its directory removed before run_postgres_rows
// returns, also when a row fails or Ctrl-C unwinds through it. A second Ctrl-C (interrupt.h:
// exit at once) still ends the postmaster (PR_SET_PDEATHSIG, and the terminal's SIGINT reaches
// it too) but leaves its directory in $TMPDIR: only a live owner removes it. Without PostgreSQL
// 15 installed, or a demo built without libpq, the rows are skipped and `skipped` says why in
// one line. Construct on the main thread: the cluster dies with the thread that made it.

#include <filesystem>
#include <string>
#include <vector>

#include "crash_act.h"
#include "pause_row.h"
#include "progress.h"
#include "race_act.h"
#include "two_servers_act.h"

namespace forklock::demo {

struct PostgresRows {
    std::string skipped; // why the rows did not run; empty when they ran
    std::vector<TwoServerRow> two_servers;
    std::vector<CrashRow> crash;
    std::vector<PauseRow> pause;
};

// How many rows run_postgres_rows runs, for the progress labels ("act 3 [5/6] ...").
inline constexpr int kPostgresRows = 3;

// first_row, rows: this act's numbering for the labels. Throws Interrupted on Ctrl-C; a cluster
// that does not start makes every row inconclusive with its error.
PostgresRows run_postgres_rows(const std::filesystem::path& server, const RaceSizes& sizes,
                               Progress& progress, int first_row, int rows);

// Act 5's first row: only the paused holder (pause filled, or skipped), on a cluster of its own.
// `prefix`: the progress label's start ("act 5 [1/5]").
PostgresRows run_postgres_pause(const std::filesystem::path& server, Progress& progress,
                                const std::string& prefix);

} // namespace forklock::demo
