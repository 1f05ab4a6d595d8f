#pragma once
// Act 5, leases and fencing: a lock that expires trades safety for liveness. Rows:
// - postgres, no lease: the paused holder blocks everyone (Act 3's paused-holder row, reused
//   when Act 3 ran in this demo, else run here on a throwaway PostgreSQL);
// - redis, then the table's own lease (semaphore --lock-lease-ms), each without and with
//   --fencing: the holder of a key is stopped with SIGSTOP after its last still_held() check
//   and before its write (the increment's write_delay_ms), for at least kLeasePauseMs and until
//   a worker of its server has taken the key after the kLeaseMs lease and committed; then
//   SIGCONT. Without fencing its late write lands over the other's (one update lost, two holders
//   in the trace; the server answers it 503 "written": its unlock finds the lease gone, too late);
//   with fencing the store refuses it with 409 and writes nothing.
// Each lease row starts its own server (-w 2 --threads 1 --preload: the stopped worker's only
// loop is inside the increment, so every other request reaches the other worker); the redis rows
// share one throwaway redis-server (harness/redis_server.h), stopped before run_lease_act returns.
// Without redis-server (or PostgreSQL) their rows are skipped with one line each.

#include <filesystem>
#include <string>
#include <vector>

#include "lease_theory.h"
#include "pause_row.h"
#include "progress.h"
#include "server_api.h"

namespace forklock::demo {

inline constexpr int kLeaseAct = 5;
inline constexpr int kLeaseMs = 200;       // the rows' --lock-lease-ms
inline constexpr int kLeasePauseMs = 500;  // the shortest SIGSTOP: well past the lease
inline constexpr int kLeaseWriteDelayMs = 1'000; // the holder's wait between check and write

struct LeaseRow {
    ServerConfig config;
    pid_t paused_pid = 0;
    double paused_ms = 0;   // from SIGSTOP to SIGCONT
    double taken_ms = 0;    // from SIGSTOP to the other worker's 200
    IncrementReply holder;  // the paused holder's reply, after SIGCONT
    IncrementReply taker;   // the other worker's, while it slept
    long value_after_late = -1; // the counter just after the paused holder's reply
    int committed = 0;          // increments answered 200
    int writes = 0;             // of them and the late write, those that wrote
    long final = -1;
    long overlaps = -1; // from GET /analysis: sections of the key held at once
    int attempts = 0;   // runs, a rerun only when the pause missed the check-to-write window
    LeaseJudgement judgement;
    double seconds = 0;
};

struct LeaseAct {
    bool ran = false;
    bool postgres_from_act3 = false; // the postgres row is Act 3's (DemoResults::postgres_pause)
    std::string postgres_skipped;    // why the postgres row did not run; empty when it ran
    std::string redis_skipped;       // why the redis rows did not run; empty when they ran
    std::vector<PauseRow> postgres;  // empty when it is Act 3's
    std::vector<LeaseRow> rows;
};

// The lease rows in teaching order: redis, redis --fencing, semaphore, semaphore --fencing
// (lock_url empty: run_lease_act fills in its Redis).
std::vector<ServerConfig> lease_scenarios();

// act3_ran: Act 3 ran in this demo, so its paused postgres holder (or its skip line) stands for
// this act's first row instead of running again. Throws Interrupted on Ctrl-C.
LeaseAct run_lease_act(const std::filesystem::path& server, Progress& progress, bool act3_ran);

} // namespace forklock::demo
