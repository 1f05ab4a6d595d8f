#pragma once
// The theory of the seed's scene (Python's locks under gunicorn, seed_act.h). Pure, unit-tested.
// Each Python lock is one of forklock's modes in disguise, so its predictions are theory.h's for
// that mode: threading.Lock is a mutex in private memory (mode thread); multiprocessing.Lock is
// a POSIX semaphore with no owner and nobody to release it for a dead holder (semaphore,
// --no-lock-recovery); forklock.LockDict with a name is a named table of robust mutexes (mutex,
// --lock-name). What the server's acts do not show is the key: multiprocessing.Lock is one lock
// for every key, so a key waits for the holder of another.

#include <optional>
#include <string>
#include <string_view>

#include "theory.h"

namespace forklock::demo {

enum class PyLock { threading, multiprocessing, forklock };
// "threading.Lock", "multiprocessing.Lock", "forklock.LockDict".
std::string_view to_string(PyLock lock);
// app.py's LOCK: "threading", "multiprocessing", "forklock".
std::string_view app_lock_name(PyLock lock);

struct SeedConfig {
    PyLock lock = PyLock::threading;
    bool preload = false;
    int workers = 4;
    std::string lock_name = {}; // forklock.LockDict(name=...): the workers meet by it
};

// The forklock server configuration that behaves as this Python lock under gunicorn.
ServerConfig as_server_config(const SeedConfig& config);

Verdict predict_seed_race(const SeedConfig& config);
std::string_view why_seed_race(const SeedConfig& config);
CrashVerdict predict_seed_crash(const SeedConfig& config);
std::string_view why_seed_crash(const SeedConfig& config);

// Does an increment of one key wait while another key is held? Only asked of locks that
// exclude the workers at all; nullopt for the others.
enum class KeyScope { per_key, one_for_all };
std::string_view to_string(KeyScope scope);
std::optional<KeyScope> predict_key_scope(const SeedConfig& config);

// How long the other key's increment must wait (of the first key's 1 s hold) to count as
// waiting for it: far above a free lock's microseconds, far below the hold.
inline constexpr double kOtherKeyWaitedMs = 100.0;

struct SeedRaceCounts {
    int sent = 0;
    int ok = 0;
    int errors = 0;
    long final = 0;
    int worker_pids = 0;
    int waited = 0;
    std::optional<double> other_key_waited_ms; // nullopt: not probed
};

struct SeedRaceJudgement {
    RaceJudgement race;
    std::optional<KeyScope> scope; // what the other key's probe showed
};

SeedRaceJudgement judge_seed_race(const SeedConfig& config, const SeedRaceCounts& counts);

} // namespace forklock::demo
