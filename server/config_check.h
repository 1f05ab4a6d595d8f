#pragma once
// --check-config (nginx -t): probes what the options name without serving. It binds the address
// and closes it (or takes the systemd socket main() already validated), checks that the data
// directory, pid file and access log can be written, and makes the lock table and drops it: a
// named table is claimed (refused when a live server holds the name without --lock-share) and
// its name removed again; postgres connects with --lock-url and makes its key table, as a
// start would. No worker is forked and nothing is left in /dev/shm.

#include "app/options.h"

namespace forklock {

// Prints "configuration ok" to stdout and returns 0, or "forklock: error: WHY" to stderr and
// returns 2. `inherited`: the socket came from systemd: nothing is bound.
int check_config(const Options& options, bool inherited);

} // namespace forklock
