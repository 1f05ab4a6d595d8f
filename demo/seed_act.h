#pragma once
// The seed's scene: the Python app of the seed (demo/python/app.py: read a counter file, hold
// the lock a few ms, write value+1) under the real gunicorn, once per Python lock: which lose
// updates, which lock every key at once, and what happens when a worker is killed holding the
// lock. Each row starts its own gunicorn (`python3 -m gunicorn -w N`, its own process group,
// registered for the demo's Ctrl-C) and stops it, the whole group, before the next row, also
// when the row fails; nothing is left in /dev/shm (forklock's named table is removed by its last
// user; multiprocessing.Lock's semaphore is unlinked at birth). It runs after Acts 1-3, before 5;
// its number is kSeedAct, in one place, so that acts added before it only change that constant.

#include <filesystem>
#include <string>
#include <vector>

#include "crash_act.h"
#include "load.h"
#include "progress.h"
#include "race_act.h"
#include "seed_theory.h"

namespace forklock::demo {

inline constexpr int kSeedAct = 4;

// Where the scene finds Python, the forklock module and the app.
struct SeedSetup {
    std::filesystem::path python = "/usr/bin/python3"; // Debian's: gunicorn is installed for it
    std::filesystem::path module_dir; // holds forklock/ (the build's python/, or installed: "")
    std::filesystem::path app_dir;    // app.py and gunicorn_conf.py
};

// The build's paths: <dir of /proc/self/exe>/../python, and the source's demo/python.
SeedSetup default_seed_setup();

struct SeedRaceRow {
    SeedConfig config;
    LoadResult load;
    long final = 0;
    std::optional<double> other_key_waited_ms; // the other key's wait while one was held
    SeedRaceJudgement judgement;
    double seconds = 0;
};

struct SeedCrashRow {
    SeedConfig seed;
    CrashRow crash; // crash.config: the seed's as_server_config, for the shared crash theory
};

struct SeedScene {
    std::string skipped; // why the scene did not run (one line); empty when it ran
    std::vector<SeedRaceRow> race;
    std::vector<SeedCrashRow> crash;
};

// "" when the scene can run; otherwise why not, and how to get it (a missing interpreter, an
// unbuilt module, gunicorn or forklock that do not import). Runs the interpreter once.
std::string seed_unavailable(const SeedSetup& setup);

// The rows in teaching order: threading.Lock --preload; multiprocessing.Lock without, then with
// --preload; forklock.LockDict named without preload. Then the killed holders:
// multiprocessing.Lock --preload, forklock.LockDict named.
std::vector<SeedConfig> seed_race_scenarios(const RaceSizes& sizes);
std::vector<SeedConfig> seed_crash_scenarios();

// Runs every row (or returns `skipped`). Throws Interrupted on Ctrl-C, after stopping gunicorn.
SeedScene run_seed_act(const SeedSetup& setup, const RaceSizes& sizes, Progress& progress);

} // namespace forklock::demo
