#pragma once
// replay_schedule: runs a step schedule ("A:read B:read A:write B:write") on real workers of a
// running server through its step mode (docs/stepping.md): turns step mode on for the key,
// starts two increments on two connections (A, then B once A is parked), moves them as the
// schedule says, then runs both to the end, A first. "X:verb" means: step X until it has done
// `verb` (lock, read, write, unlock, done). A step that cannot run (X waits inside lock()) is
// reported with the reason and skipped. The server needs a worker free for the steps besides the
// two parked ones (-w 3, one thread each). Not thread-safe; throws HttpError on a bad schedule or
// a server that does not answer.

#include <cstdint>
#include <string>
#include <vector>

#include "harness/server_process.h"

namespace forklock::harness {

struct ReplayResult {
    std::uint64_t final_value = 0;
    std::vector<int> statuses;        // A's and B's HTTP status
    std::vector<std::string> blocked; // "B:read could not run: B waits for the lock held by pid P"
    std::string schedule;             // what the server recorded
};

ReplayResult replay_schedule(const ServerProcess& server, const std::string& key,
                             const std::string& schedule);

} // namespace forklock::harness
