#pragma once
// Act 3's paused holder: the worker holding a key is stopped with SIGSTOP (a process that is
// swapped out, stuck in a debugger, or a VM that was paused), increments with timeout_ms are
// sent while it sleeps, then SIGCONT. What was observed: did the key stay locked (503 naming the
// paused pid), did the holder finish after SIGCONT, was the key free again, and is every
// committed increment in the counter?

#include <filesystem>
#include <string>

#include <sys/types.h>

#include "progress.h"
#include "theory.h"

namespace forklock::demo {

// The holder's hold: long enough to be found and stopped inside it, short enough that it has
// expired by SIGCONT (a sleep's deadline runs on while the process is stopped).
inline constexpr int kPauseHoldMs = 600;

struct PauseRow {
    ServerConfig config;
    pid_t paused_pid = 0;
    bool paused_holding = false; // it was stopped before its increment answered
    double paused_ms = 0;        // from SIGSTOP to SIGCONT
    int probe_timeout_ms = 0;    // the timeout_ms of the increments sent during the pause
    int probes = 0;
    int refused = 0;           // 503 naming the paused pid as the key's owner
    int refused_past_hold = 0; // of them, answered once the holder's own hold had ended
    int admitted = 0;          // 200: the key was not held while its holder slept
    int other_replies = 0;     // anything else: a 503 naming someone else, no answer
    bool holder_finished = false;
    double holder_finished_after_ms = 0; // from SIGCONT to the holder's 200
    bool freed_after = false;
    double freed_after_ms = 0; // from SIGCONT to the next increment's 200
    int committed = 0;         // 2xx increments, before, during and after the pause
    long final = -1;
    PauseVerdict observed = PauseVerdict::held_while_paused;
    RowStatus status = RowStatus::inconclusive;
    std::string note;
    double seconds = 0;
};

// The config is the caller's (Act 3: postgres --preload, for a shared owner_pid in /locks and
// the 503s). The stopped worker always gets SIGCONT, also on failure or Ctrl-C.
PauseRow run_pause(const std::filesystem::path& server, const ServerConfig& config,
                   Progress& progress, const std::string& label);

} // namespace forklock::demo
