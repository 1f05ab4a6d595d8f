#pragma once
// The schedule mode (--schedule): one step schedule replayed on a real server of 3 workers
// (harness/step_replay.h), printed with the final value. Returns 0, or 1 when the server failed.

#include "options.h"

namespace forklock::demo {

int run_schedule(const Options& options);

} // namespace forklock::demo
