#pragma once
// Act 5's theory: a lock with a lease trades safety for liveness. A holder paused past its lease
// (SIGSTOP after its last still_held() check, before its write) loses the key to a waiter; when
// it wakes it writes a value read under a lock it no longer holds, over the new holder's: one
// acknowledged increment is gone. A store that remembers the highest fencing token that touched
// the key (--fencing) refuses the late, lower token with 409: nothing is lost. The mode does not
// matter (Redis's lease, or the table's own --lock-lease-ms in semaphore mode); the store does.
// Pure, unit-tested without a server.

#include <cstdint>
#include <string>
#include <string_view>

#include "demo_server.h"
#include "theory.h"

namespace forklock::demo {

enum class LeaseVerdict { loses_update, refuses_late_write };
std::string_view to_string(LeaseVerdict verdict);

LeaseVerdict predict_lease(const ServerConfig& config);
std::string_view why_lease(const ServerConfig& config);

// What one lease row saw.
struct LeaseFacts {
    bool paused_holding = false; // the holder was stopped before its increment answered
    bool taken_over = false;     // another worker's increment answered 200 while it was stopped
    int holder_status = 0;       // the paused holder's reply after SIGCONT (0: none)
    bool holder_wrote = false;   // its write landed (200, or 503 "written": its unlock failed)
    long taker_value = 0;        // the value the other worker's increment wrote
    long value_after_late = -1;  // the counter just after the paused holder's reply
    std::uint64_t holder_token = 0; // the refused grant's token (409)
    std::uint64_t taker_token = 0;
    long overlaps = -1; // the trace's pairs of sections held at once; -1: unread
    int committed = 0;  // increments answered 200
    int writes = 0;     // increments that wrote: the committed and a late write that landed
    long final = -1;    // the counter at the end
};

struct LeaseJudgement {
    LeaseVerdict observed = LeaseVerdict::loses_update;
    RowStatus status = RowStatus::inconclusive;
    std::string note;
    bool missed_window = false; // the pause did not fall between the check and the write: rerun
};

LeaseJudgement judge_lease(const ServerConfig& config, const LeaseFacts& facts);

} // namespace forklock::demo
