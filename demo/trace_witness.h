#pragma once
// TraceWitness: what the server's trace of critical sections says about one key (GET /analysis),
// the second witness of a race row besides the counter itself.

#include <string>
#include <vector>

namespace forklock::demo {

struct TraceWitness {
    long increments = 0; // written sections of the key
    long overlaps = 0;   // pairs of sections held at once by different workers or threads
    long lost = 0;       // updates lost, found from the trace alone
    std::vector<std::string> examples; // interleavings that lost updates, as text
    long lost_min = 0; // lost_min <= lost <= lost_max: the trace cannot tell which write landed
    long lost_max = 0; // last when several ended at once (trace_analysis.h)
};

} // namespace forklock::demo
