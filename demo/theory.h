#pragma once
// What the theory predicts for each scenario, and the one sentence that says why. Pure: the
// demo's exit code is "did every row do what this file says", so it is unit-tested on its own.

#include <optional>
#include <string>
#include <string_view>

#include "demo_server.h"
#include "trace_witness.h"

namespace forklock::demo {

enum class Verdict { loses_updates, safe };
std::string_view to_string(Verdict verdict);

// Act 1: does a read-modify-write under this configuration's lock lose updates when requests
// overlap? Only when two of its workers (or threads, for none) can be inside at once.
Verdict predict_race(const ServerConfig& config);
// Why, in one short sentence, specific to the configuration (preload, workers, threads).
std::string_view why_race(const ServerConfig& config);

// Act 2: after SIGKILL of the holder, is the key usable again? Every process-shared mode
// recovers (kernel, robust mutex, or master); a semaphore whose master does not release stays
// locked, as multiprocessing.Lock does under gunicorn.
enum class CrashVerdict { recovers, stays_locked };
std::string_view to_string(CrashVerdict verdict);
CrashVerdict predict_crash(const ServerConfig& config);
std::string_view why_crash(const ServerConfig& config);

// Act 3: two servers (two masters, their own workers) on one data directory, increments
// alternating between them. A lock excludes across servers only if both find it without
// inheriting it: the kernel's (flock), a named table both open (--lock-name, --lock-share), or
// the database server's (postgres, which would work across machines too); --preload gives each
// master its own table.
Verdict predict_two_servers(const ServerConfig& config);
std::string_view why_two_servers(const ServerConfig& config);

// Act 3, a paused holder (SIGSTOP): nothing died, so nothing is released. A paused process keeps
// its connections open, so PostgreSQL keeps its session and the session's locks for as long as
// the pause lasts; waiters with timeout_ms answer 503 and write nothing; SIGCONT lets the holder
// finish and the key is free again. Every excluding mode predicts the same; the row runs in
// postgres mode, where "the lock lives as long as the session" is the contract.
enum class PauseVerdict { held_while_paused, released_while_paused };
std::string_view to_string(PauseVerdict verdict);
PauseVerdict predict_pause(const ServerConfig& config);
std::string_view why_pause(const ServerConfig& config);

// What one two-server run measured.
struct TwoServerCounts {
    int sent = 0;
    int ok = 0;
    int errors = 0;
    long final = 0;
    int served_by_a = 0; // 2xx increments each server answered
    int served_by_b = 0;
    int waited = 0;
};

// What one race run measured, and how it compares with the prediction.
struct RaceCounts {
    int sent = 0;                      // increments attempted
    int ok = 0;                        // 2xx replies: committed updates
    int errors = 0;                    // anything else (non-2xx, connection failure)
    long final = 0;                    // the counter at the end
    int worker_pids = 0;               // distinct worker pids that served an increment
    int waited = 0;                    // increments that waited for the lock: overlap was attempted
    std::optional<TraceWitness> trace; // the trace's view of the key; nullopt: it could not be read
};

enum class RowStatus { as_predicted, unexpected, inconclusive };
std::string_view to_string(RowStatus status);

struct RaceJudgement {
    Verdict observed = Verdict::safe;
    RowStatus status = RowStatus::inconclusive;
    std::string note; // why a row is not as predicted; empty otherwise
};

RaceJudgement judge_race(const ServerConfig& config, const RaceCounts& counts);
// Act 3's judgement: as judge_race, without the trace (two servers, two traces).
RaceJudgement judge_two_servers(const ServerConfig& config, const TwoServerCounts& counts);

// What one crash run saw after the kill.
struct CrashFacts {
    bool freed = false;           // an increment of the key succeeded
    bool reported_locked = false; // an increment timed out with 503: the key stayed locked
    bool replaced = false;        // the master replaced the killed worker
    int committed = 0;            // 2xx increments
    long final = -1;              // the counter at the end
};

struct CrashJudgement {
    CrashVerdict observed = CrashVerdict::stays_locked;
    RowStatus status = RowStatus::inconclusive;
    std::string note;
};

CrashJudgement judge_crash(const ServerConfig& config, const CrashFacts& facts);

// What one pause run saw.
struct PauseFacts {
    bool paused_holding = false;  // the holder was stopped before its increment answered
    int probes = 0;               // increments with timeout_ms sent while it was stopped
    int refused = 0;              // of them, 503 (timeout_ms elapsed) naming the paused holder
    int refused_past_hold = 0;    // of those, answered after the holder's hold_ms had run out:
                                  // only the pause kept the key locked then
    int admitted = 0;             // of them, 200: the key was free while its holder slept
    bool holder_finished = false; // the holder's increment answered 200 after SIGCONT
    bool freed_after = false;     // a later increment of the key succeeded
    int committed = 0;            // 2xx increments, the holder's included
    long final = -1;              // the counter at the end
};

struct PauseJudgement {
    PauseVerdict observed = PauseVerdict::held_while_paused;
    RowStatus status = RowStatus::inconclusive;
    std::string note;
};

PauseJudgement judge_pause(const ServerConfig& config, const PauseFacts& facts);

} // namespace forklock::demo
