#pragma once
// replay_schedule: runs a step schedule ("A:read B:read A:write B:write") on real workers of a
// running server through its step mode (docs/stepping.md): turns step mode on for the key,
// starts two increments on two connections (A, then B once A is parked), moves them as the
// schedule says, then runs both to the end, A first. "X:verb" means: step X until it has done
// `verb` (lock, read, write, unlock, done). A step that cannot run (X waits inside lock()) is
// reported with the reason and skipped. The server needs a worker free for the steps besides the
// two parked ones (-w 3, one thread each). Not thread-safe; throws HttpError on a bad schedule or
// a server that does not answer.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/server_process.h"

namespace forklock::harness {

struct ReplayResult {
    std::uint64_t final_value = 0;
    std::vector<int> statuses;        // A's and B's HTTP status
    std::vector<std::string> blocked; // "B:read could not run: B waits for the lock held by pid P"
    std::string schedule;             // what the server recorded
};

// get_parked_json: GET `target` as JSON from a server whose workers may be parked in step mode.
// A worker of one thread can take a second connection before its first one's request parks (a
// client that connected and sent nothing yet does not hold the accept turn), and then holds that
// connection until the park ends. So each try waits at most 1 s before a new connection is tried,
// until `timeout`; HttpError says what the last try got.
nlohmann::json get_parked_json(const ServerProcess& server, const std::string& target,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10));

ReplayResult replay_schedule(const ServerProcess& server, const std::string& key,
                             const std::string& schedule);

} // namespace forklock::harness
