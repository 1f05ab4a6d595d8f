#pragma once
// The server of one demo scenario: its configuration, the command line that gives it, and a
// harness::ServerProcess wired to the demo's Ctrl-C (interrupt.h): every wait gives up on the
// first Ctrl-C, the server then gets INT (quick, as gunicorn) instead of TERM, and its process
// group is registered for the second Ctrl-C's SIGKILL.

#include <filesystem>
#include <string>
#include <vector>

#include "harness/server_process.h"
#include <forklock/lock_mode.h>

namespace forklock::demo {

struct ServerConfig {
    LockMode mode = LockMode::none;
    bool preload = false;
    int workers = 1;
    int threads = 1;
    bool lock_recovery = true;
    std::string lock_name = {}; // --lock-name: semaphore, mutex tables met by name
    bool lock_share = false;    // --lock-share: a second server joins the named table
    std::string lock_url = {};  // --lock-url: postgres's conninfo, or redis's unix:// socket
    int lease_ms = 0;           // --lock-lease-ms: a held key's lease (semaphore, redis); 0: none
    bool fencing = false;       // --fencing: the store refuses a write with an older token
};

// The server's flags for a config (the harness adds -b and --data-dir), pure so it can be tested.
std::vector<std::string> server_args(const ServerConfig& config);

// The hooks that wire a harness::ServerProcess to the demo's Ctrl-C (any binary: also gunicorn).
harness::ServerHooks demo_server_hooks();

// Starts `binary` with the config's flags and returns once all its workers have booted. Throws
// std::runtime_error (with the log's tail) when it does not come up, Interrupted on Ctrl-C.
// `data_dir`: the counters' directory; empty: one of the server's own.
harness::ServerProcess start_server(const std::filesystem::path& binary, const ServerConfig& config,
                                    const std::filesystem::path& data_dir = {});

} // namespace forklock::demo
