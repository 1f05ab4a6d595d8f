#include "seed_theory.h"

#include <fmt/format.h>

namespace forklock::demo {

std::string_view to_string(PyLock lock)
{
    switch (lock) {
    case PyLock::threading: return "threading.Lock";
    case PyLock::multiprocessing: return "multiprocessing.Lock";
    case PyLock::forklock: return "forklock.LockDict";
    }
    return "?";
}

std::string_view app_lock_name(PyLock lock)
{
    switch (lock) {
    case PyLock::threading: return "threading";
    case PyLock::multiprocessing: return "multiprocessing";
    case PyLock::forklock: return "forklock";
    }
    return "?";
}

ServerConfig as_server_config(const SeedConfig& config)
{
    switch (config.lock) {
    case PyLock::threading: return {LockMode::thread, config.preload, config.workers, 1, true};
    case PyLock::multiprocessing:
        return {LockMode::semaphore, config.preload, config.workers, 1, false};
    case PyLock::forklock:
        return {LockMode::mutex, config.preload, config.workers, 1, true, config.lock_name};
    }
    return {};
}

Verdict predict_seed_race(const SeedConfig& config)
{
    return predict_race(as_server_config(config));
}

std::string_view why_seed_race(const SeedConfig& config)
{
    switch (config.lock) {
    case PyLock::threading:
        return "fork copies the lock: each worker has its own threading.Lock (the seed's bug)";
    case PyLock::multiprocessing:
        return config.preload ? "one semaphore made before fork is shared by every worker, but "
                                "it is one lock: every key waits for every other"
                              : "each worker imported app.py after fork and made its own "
                                "multiprocessing.Lock";
    case PyLock::forklock:
        return "every worker opens the table by its name: shared without preload, one lock "
               "per key";
    }
    return "?";
}

CrashVerdict predict_seed_crash(const SeedConfig& config)
{
    return predict_crash(as_server_config(config));
}

std::string_view why_seed_crash(const SeedConfig& config)
{
    switch (config.lock) {
    case PyLock::multiprocessing:
        return "a semaphore has no owner: nobody ever releases it, and every worker that "
               "wants it hangs";
    case PyLock::forklock:
        return "robust mutex: the next locker gets EOWNERDEAD and takes the key over";
    case PyLock::threading: break;
    }
    return "this lock does not exclude the workers";
}

std::string_view to_string(KeyScope scope)
{
    return scope == KeyScope::per_key ? "per key" : "one lock for all keys";
}

std::optional<KeyScope> predict_key_scope(const SeedConfig& config)
{
    if (predict_seed_race(config) == Verdict::loses_updates) return std::nullopt;
    return config.lock == PyLock::forklock ? KeyScope::per_key : KeyScope::one_for_all;
}

namespace {

// Why the counts cannot judge the row (inconclusive), or "".
std::string doubt(const SeedConfig& config, const SeedRaceCounts& counts, Verdict observed)
{
    if (counts.errors > 0)
        return fmt::format("{} of {} increments failed", counts.errors, counts.sent);
    if (counts.final > counts.ok)
        return fmt::format("final {} is above the {} committed", counts.final, counts.ok);
    if (config.workers > 1 && counts.worker_pids < 2)
        return "every request reached the same worker: nothing overlapped across fork";
    if (observed != predict_seed_race(config)) return {};
    if (observed == Verdict::safe && counts.waited == 0)
        return "no increment waited for the lock: nothing tried to overlap";
    if (predict_key_scope(config) && !counts.other_key_waited_ms)
        return "the other key was not probed";
    return {};
}

} // namespace

SeedRaceJudgement judge_seed_race(const SeedConfig& config, const SeedRaceCounts& counts)
{
    SeedRaceJudgement judgement;
    RaceJudgement& race = judgement.race;
    race.observed = counts.final < counts.ok ? Verdict::loses_updates : Verdict::safe;
    if (counts.other_key_waited_ms)
        judgement.scope = *counts.other_key_waited_ms >= kOtherKeyWaitedMs ? KeyScope::one_for_all
                                                                           : KeyScope::per_key;
    race.note = doubt(config, counts, race.observed);
    if (!race.note.empty()) return judgement; // inconclusive
    race.status = RowStatus::unexpected;
    if (race.observed != predict_seed_race(config))
        race.note = fmt::format("theory says {}", to_string(predict_seed_race(config)));
    else if (predict_key_scope(config) && judgement.scope != predict_key_scope(config))
        race.note = fmt::format("theory says {}: the other key waited {:.1f} ms",
                                to_string(*predict_key_scope(config)), *counts.other_key_waited_ms);
    else
        race.status = RowStatus::as_predicted;
    return judgement;
}

} // namespace forklock::demo
