#pragma once
// The worker process: boots after fork() (its own signal handlers, counter store, lock table
// unless preloaded, and T event loops), serves until told to stop, and exits. It never returns
// into the master's code: run_worker() ends with _exit(), so the master's objects copied by fork
// (the lock table, the listener) are not destroyed twice.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "app/options.h"
#include "app/scoreboard.h"
#include <forklock/lock_table.h>
#include "trace/histogram.h"
#include "trace/trace_ring.h"

namespace forklock {

class SignalQueue;

// Exit codes the master understands (gunicorn's WORKER_BOOT_ERROR): a worker that can't boot
// stops the master instead of being respawned forever.
inline constexpr int kWorkerExitOk = 0;
inline constexpr int kWorkerBootError = 3;

struct WorkerSpec {
    const Options* options = nullptr;
    int listen_fd = -1;
    Scoreboard* scoreboard = nullptr;
    std::size_t slot = 0;
    pid_t master_pid = 0;
    LockTable* preloaded_table = nullptr; // the master's, with --preload; else the worker makes one
                                          // (with --lock-name: opens the master's by name)
    SignalQueue* master_signals = nullptr; // detached in the child
    std::uint64_t max_requests = 0;        // jitter already added; 0 = never recycle
    TraceRing* trace = nullptr;            // the master's, shared; null with --no-trace
    LockMetrics* metrics = nullptr;        // the master's, shared
    std::uint32_t generation = 0;          // of the config it runs: written to its slot at boot
};

[[noreturn]] void run_worker(const WorkerSpec& spec);

// Where flock mode keeps its KEY.lock files: a directory no key can name (keys never start
// with '.').
std::filesystem::path lock_dir_for(const std::filesystem::path& data_dir);
LockTableOptions lock_table_options(const Options& options);

} // namespace forklock
