#pragma once
// Chrome Trace Event JSON for trace records, to open a run in Perfetto (ui.perfetto.dev) or
// chrome://tracing: one track per worker pid and thread; per record a complete event ("ph": "X")
// "wait KEY" from requested to acquired (or to the give-up for a timeout) and "hold KEY" from
// acquired to released. ts and dur are in µs of CLOCK_MONOTONIC, as the records are.

#include <string>
#include <vector>

#include "trace/trace_record.h"

namespace forklock {

// chrome_trace_json: {"traceEvents": [...], "displayTimeUnit": "ms"}, newline-terminated.
std::string chrome_trace_json(const std::vector<TraceRecord>& records);

} // namespace forklock
