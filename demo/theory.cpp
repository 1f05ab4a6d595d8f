#include "theory.h"

#include <fmt/format.h>

namespace forklock::demo {

std::string_view to_string(Verdict verdict)
{
    return verdict == Verdict::loses_updates ? "loses updates" : "safe";
}

std::string_view to_string(CrashVerdict verdict)
{
    return verdict == CrashVerdict::recovers ? "recovers" : "stays locked";
}

std::string_view to_string(RowStatus status)
{
    switch (status) {
    case RowStatus::as_predicted: return "as predicted";
    case RowStatus::unexpected: return "UNEXPECTED";
    case RowStatus::inconclusive: return "inconclusive";
    }
    return "?";
}

Verdict predict_race(const ServerConfig& config)
{
    return serializes_increments(config.mode, config.preload, config.workers, config.threads,
                                 !config.lock_name.empty())
               ? Verdict::safe
               : Verdict::loses_updates;
}

std::string_view why_race(const ServerConfig& config)
{
    const bool shared = predict_race(config) == Verdict::safe;
    switch (config.mode) {
    case LockMode::none: return "no lock: overlapping read-modify-writes overwrite each other";
    case LockMode::thread:
        return shared ? "one process: its threads share one std::mutex"
                      : "fork copies private memory: each worker has its own std::mutex";
    case LockMode::semaphore:
        if (!config.lock_name.empty() && !config.preload)
            return "every worker opens the same named semaphores: the name is the meeting point";
        return shared ? "semaphores made before fork are shared by every worker"
                      : "without preload each worker made its own semaphores";
    case LockMode::mutex:
        if (!config.lock_name.empty() && !config.preload)
            return "every worker maps /dev/shm/forklock-NAME: the name is the meeting point";
        return shared ? "mutexes in MAP_SHARED memory made before fork are shared"
                      : "without preload each worker mapped its own mutexes";
    case LockMode::flock: return "the kernel owns file locks: every worker opens the same file";
    case LockMode::postgres: return "PostgreSQL holds the locks for every connection";
    case LockMode::redis: return "Redis holds each key's lease for every client";
    default: return facts(config.mode).why; // a mode the lesson does not narrate yet
    }
}

Verdict predict_two_servers(const ServerConfig& config)
{
    const ModeFacts& mode = facts(config.mode);
    const bool named = !config.lock_name.empty() && config.lock_share && mode.can_be_named;
    const bool kernel_or_database = mode.shared_without_preload;
    return kernel_or_database || named ? Verdict::safe : Verdict::loses_updates;
}

std::string_view why_two_servers(const ServerConfig& config)
{
    if (predict_two_servers(config) == Verdict::loses_updates) {
        if (facts(config.mode).private_memory)
            return "this mode does not even exclude the workers of one server";
        return "each master made its own table before fork: two servers, two tables";
    }
    if (config.mode == LockMode::flock)
        return "one kernel: both servers open the same lock files in the shared data directory";
    if (config.mode == LockMode::postgres)
        return "one database server: both servers lock the key's advisory id in it, as they "
               "would from two machines";
    if (config.mode == LockMode::redis)
        return "one Redis: both servers SET the key's lock in it, as they would from two machines";
    if (!facts(config.mode).can_be_named) return facts(config.mode).why;
    return "one machine: both servers open /dev/shm/forklock-NAME, so there is one table";
}

RaceJudgement judge_two_servers(const ServerConfig& config, const TwoServerCounts& counts)
{
    RaceJudgement judgement;
    judgement.observed = counts.final < counts.ok ? Verdict::loses_updates : Verdict::safe;
    if (counts.errors > 0)
        judgement.note = fmt::format("{} of {} increments failed", counts.errors, counts.sent);
    else if (counts.final > counts.ok)
        judgement.note = fmt::format("final {} is above the {} committed", counts.final, counts.ok);
    else if (counts.served_by_a == 0 || counts.served_by_b == 0)
        judgement.note = "one server answered every increment: nothing crossed servers";
    else if (judgement.observed != predict_two_servers(config)) {
        judgement.status = RowStatus::unexpected;
        judgement.note = fmt::format("theory says {}", to_string(predict_two_servers(config)));
        return judgement;
    } else if (judgement.observed == Verdict::safe && counts.waited == 0)
        judgement.note = "no increment waited for the lock: nothing tried to overlap";
    else {
        judgement.status = RowStatus::as_predicted;
        return judgement;
    }
    judgement.status = RowStatus::inconclusive;
    return judgement;
}

std::string_view to_string(PauseVerdict verdict)
{
    return verdict == PauseVerdict::held_while_paused ? "held while paused"
                                                      : "released while paused";
}

PauseVerdict predict_pause(const ServerConfig& config)
{
    const bool excludes = !facts(config.mode).private_memory; // excludes processes
    return excludes ? PauseVerdict::held_while_paused : PauseVerdict::released_while_paused;
}

std::string_view why_pause(const ServerConfig& config)
{
    if (config.mode == LockMode::postgres)
        return "a stopped process still has its connection open, so its session and the "
               "session's locks live on: PostgreSQL cannot tell paused from slow";
    if (facts(config.mode).leases)
        return "nothing died, so the stopped holder keeps its key, but only until its lease "
               "expires: a pause longer than the lease lets another holder in";
    return predict_pause(config) == PauseVerdict::held_while_paused
               ? "nothing died, so nothing releases the lock of a stopped holder"
               : "this mode does not exclude processes";
}

CrashVerdict predict_crash(const ServerConfig& config)
{
    return config.mode == LockMode::semaphore && !config.lock_recovery ? CrashVerdict::stays_locked
                                                                       : CrashVerdict::recovers;
}

std::string_view why_crash(const ServerConfig& config)
{
    // Without the master's recovery, a semaphore's dead holder is never replaced.
    if (config.mode == LockMode::semaphore && !config.lock_recovery)
        return "a semaphore has no owner, so nobody ever posts it again";
    return facts(config.mode).holder_death;
}

namespace {

// The trace's disagreement with the counter, if any: a safe row must have witnessed no overlap,
// and every row's lost updates must be the ones the trace explains.
std::string trace_disagreement(const RaceCounts& counts, Verdict observed)
{
    if (!counts.trace) return "the trace could not be read";
    const TraceWitness& trace = *counts.trace;
    if (trace.increments != counts.ok)
        return fmt::format("the trace saw {} of the {} committed increments", trace.increments,
                           counts.ok);
    if (observed == Verdict::safe && trace.overlaps > 0)
        return fmt::format("nothing was lost, yet the trace witnessed {} overlaps", trace.overlaps);
    const long lost = counts.ok - counts.final;
    if (lost < trace.lost_min || lost > trace.lost_max)
        return trace.lost_min == trace.lost_max
                   ? fmt::format("the trace explains {} of the {} lost updates", trace.lost, lost)
                   : fmt::format("the trace explains {} to {} of the {} lost updates",
                                 trace.lost_min, trace.lost_max, lost);
    return {};
}

} // namespace

RaceJudgement judge_race(const ServerConfig& config, const RaceCounts& counts)
{
    RaceJudgement judgement;
    judgement.observed = counts.final < counts.ok ? Verdict::loses_updates : Verdict::safe;
    if (counts.errors > 0) {
        judgement.note = fmt::format("{} of {} increments failed", counts.errors, counts.sent);
    } else if (counts.final > counts.ok) {
        judgement.note = fmt::format("final {} is above the {} committed", counts.final, counts.ok);
    } else if (config.workers > 1 && counts.worker_pids < 2) {
        judgement.note = "every request reached the same worker: nothing overlapped across fork";
    } else if (judgement.observed != predict_race(config)) {
        judgement.status = RowStatus::unexpected;
        judgement.note = fmt::format("theory says {}", to_string(predict_race(config)));
        return judgement;
    } else if (judgement.observed == Verdict::safe && config.workers * config.threads > 1 &&
               counts.waited == 0) {
        judgement.note = "no increment waited for the lock: nothing tried to overlap";
    } else if (std::string why = trace_disagreement(counts, judgement.observed); !why.empty()) {
        judgement.note = std::move(why);
    } else {
        judgement.status = RowStatus::as_predicted;
        return judgement;
    }
    judgement.status = RowStatus::inconclusive;
    return judgement;
}

CrashJudgement judge_crash(const ServerConfig& config, const CrashFacts& facts)
{
    CrashJudgement judgement;
    judgement.observed = facts.freed ? CrashVerdict::recovers : CrashVerdict::stays_locked;
    if (!facts.freed && !facts.reported_locked) {
        judgement.note = "the key was neither freed nor reported locked (503) within 10 s";
        return judgement;
    }
    judgement.status = RowStatus::unexpected;
    if (judgement.observed != predict_crash(config))
        judgement.note = fmt::format("theory says {}", to_string(predict_crash(config)));
    else if (!facts.replaced)
        judgement.note = "the master did not replace the killed worker within 10 s";
    else if (facts.final != facts.committed)
        judgement.note = fmt::format("{} increments committed but the counter says {}",
                                     facts.committed, facts.final);
    else
        judgement.status = RowStatus::as_predicted;
    return judgement;
}

PauseJudgement judge_pause(const ServerConfig& config, const PauseFacts& facts)
{
    PauseJudgement judgement;
    judgement.observed =
        facts.admitted > 0 ? PauseVerdict::released_while_paused : PauseVerdict::held_while_paused;
    if (!facts.paused_holding) {
        judgement.note = "the holder finished before it was paused";
        return judgement;
    }
    if (judgement.observed == PauseVerdict::held_while_paused && facts.refused < facts.probes) {
        judgement.note = fmt::format("{} of {} increments sent during the pause answered 503",
                                     facts.refused, facts.probes);
        return judgement;
    }
    if (judgement.observed == PauseVerdict::held_while_paused && facts.refused_past_hold == 0) {
        judgement.note = "no increment was refused after the holder's own hold had ended";
        return judgement;
    }
    judgement.status = RowStatus::unexpected;
    if (judgement.observed != predict_pause(config))
        judgement.note =
            fmt::format("theory says {} ({} of {} increments got the key)",
                        to_string(predict_pause(config)), facts.admitted, facts.probes);
    else if (!facts.holder_finished)
        judgement.note = "the paused holder's increment did not answer 200 after SIGCONT";
    else if (!facts.freed_after)
        judgement.note = "the key was not usable again after SIGCONT";
    else if (facts.final != facts.committed)
        judgement.note = fmt::format("{} increments committed but the counter says {}",
                                     facts.committed, facts.final);
    else
        judgement.status = RowStatus::as_predicted;
    return judgement;
}

} // namespace forklock::demo
