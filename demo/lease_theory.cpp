#include "lease_theory.h"

#include <fmt/format.h>

namespace forklock::demo {

std::string_view to_string(LeaseVerdict verdict)
{
    return verdict == LeaseVerdict::loses_update ? "loses an update" : "refuses the late write";
}

LeaseVerdict predict_lease(const ServerConfig& config)
{
    return config.fencing ? LeaseVerdict::refuses_late_write : LeaseVerdict::loses_update;
}

std::string_view why_lease(const ServerConfig& config)
{
    const bool redis = config.mode == LockMode::redis;
    if (config.fencing)
        return redis ? "the store remembers the newer token that wrote the key and refuses the "
                       "paused holder's older one: 409, nothing acknowledged is lost"
                     : "the same check in the store saves the table's lease too: the fix is in "
                       "the storage, not in the lock";
    return redis ? "Redis expired the lease while its holder slept; the next holder wrote, then "
                   "the old one woke and wrote its stale value over it"
                 : "the table's own lease does the same: any lock that expires can have two "
                   "holders, so it is not about Redis";
}

namespace {

// Why the row cannot judge, or "" when the pause did what the row needs.
std::string unusable(const LeaseFacts& facts, bool& missed_window)
{
    missed_window = true;
    if (!facts.paused_holding) return "the holder answered before it was paused";
    if (facts.holder_status == 503 && !facts.holder_wrote)
        return "the holder saw its lease gone before writing (503): the pause fell before its "
               "last check";
    missed_window = false;
    if (!facts.taken_over) return "no other worker took the key while the holder slept";
    if (!facts.holder_wrote && facts.holder_status != 409)
        return fmt::format("the paused holder answered {} after SIGCONT", facts.holder_status);
    return {};
}

std::string disagreement(const LeaseFacts& facts, LeaseVerdict observed)
{
    if (observed == LeaseVerdict::loses_update) {
        if (facts.value_after_late != facts.taker_value)
            return fmt::format("after the late write the counter says {}, not the other "
                               "holder's {} again",
                               facts.value_after_late, facts.taker_value);
        if (facts.final != facts.writes - 1)
            return fmt::format("{} increments wrote, the counter says {}: not one lost",
                               facts.writes, facts.final);
        if (facts.overlaps < 1) return "the trace shows no two holders at once";
        return {};
    }
    if (facts.holder_token >= facts.taker_token)
        return fmt::format("the refused token {} is not older than the other holder's {}",
                           facts.holder_token, facts.taker_token);
    if (facts.final != facts.committed || facts.writes != facts.committed)
        return fmt::format("{} increments committed but the counter says {}", facts.committed,
                           facts.final);
    return {};
}

} // namespace

LeaseJudgement judge_lease(const ServerConfig& config, const LeaseFacts& facts)
{
    LeaseJudgement judgement;
    judgement.note = unusable(facts, judgement.missed_window);
    if (!judgement.note.empty()) return judgement;
    judgement.observed =
        facts.holder_wrote ? LeaseVerdict::loses_update : LeaseVerdict::refuses_late_write;
    judgement.status = RowStatus::unexpected;
    if (judgement.observed != predict_lease(config))
        judgement.note = fmt::format("theory says it {}", to_string(predict_lease(config)));
    else if (std::string why = disagreement(facts, judgement.observed); !why.empty())
        judgement.note = std::move(why);
    else
        judgement.status = RowStatus::as_predicted;
    return judgement;
}

} // namespace forklock::demo
