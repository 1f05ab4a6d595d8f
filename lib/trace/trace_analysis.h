#pragma once
// The race made visible: from trace records, the overlaps and lost updates of one key. Pure
// functions over copies of records: no shared memory, no clock, unit-testable by hand.
//
// Overlap: two sections of the key, held by different threads (pid, tid), inside [acquired_ns,
// unlock_ns] at the same time. That interval lies within the true critical section (taken after
// the lock returned, before unlock was called), so a correct lock never shows an overlap; one
// overlap is counted per such pair.
//
// Lost updates: the key's file replayed in the order its sections ended (unlock_ns). A write that
// read the value the file then held added one; a stale one (it read an older value) erased every
// update since that value, its own included, and a reset sets the file to 0. Summed, that is
// exactly increments - (last value written - first value read) since the last reset: what a
// client computes as committed minus final, here found from the records alone, so the two can
// check each other. The sum depends only on the value before the first write landed and on which
// write landed last, and the records tell those only up to their windows: a section reads and
// writes between its acquired_ns and its unlock_ns, and a writer preempted between its pwrite and
// its clock read ends "later" than a write that landed after its own. lost replays the order of
// unlock_ns; [lost_min, lost_max] spans every order the windows allow (trace_analysis.cpp), and a
// client's committed minus final lies in it. Sections that never overlap give one order: then
// lost_min == lost == lost_max.
// Examples: the groups of written records that read one value while racing (each read before an
// earlier one of the group wrote), told in time order: k of them lost k - 1 updates.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trace/trace_record.h"

namespace forklock {

struct TraceExample {
    std::string text;                // one line per read or write, times in ms from its first read
    std::vector<std::uint64_t> seqs; // the records it tells about
};

struct TraceAnalysis {
    std::string key;
    std::uint64_t increments = 0; // written records of the key
    std::uint64_t overlaps = 0;
    std::uint64_t lost = 0;
    std::uint64_t lost_min = 0; // lost_min <= lost <= lost_max: which write landed last (above)
    std::uint64_t lost_max = 0;
    std::vector<TraceExample> examples; // the first groups that lost updates, oldest first
};

inline constexpr std::size_t kDefaultExamples = 3;

// analyze_trace: the records of `key` among `records` (any order; other keys are ignored).
TraceAnalysis analyze_trace(const std::vector<TraceRecord>& records, std::string_view key,
                            std::size_t max_examples = kDefaultExamples);

// count_overlaps: pairs of records (of any key) from different threads holding at once.
std::uint64_t count_overlaps(std::vector<TraceRecord> held);

} // namespace forklock
