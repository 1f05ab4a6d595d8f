#include "trace/trace_analysis.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace forklock {
namespace {

constexpr std::size_t kTextColumn = 36; // where the "<-" and "->" notes start

struct Event {
    std::int64_t ns;
    const TraceRecord* record;
    bool is_write;
};

bool same_thread(const TraceRecord& a, const TraceRecord& b)
{
    return a.pid == b.pid && a.tid == b.tid;
}

std::string who(const TraceRecord& r, const std::vector<const TraceRecord*>& group)
{
    bool pid_shared =
        std::count_if(group.begin(), group.end(), [&](auto* g) { return g->pid == r.pid; }) > 1;
    return pid_shared ? fmt::format("pid {} tid {}", r.pid, r.tid) : fmt::format("pid {}", r.pid);
}

std::string line(std::string text, std::string_view note)
{
    if (!note.empty())
        text += std::string(text.size() < kTextColumn ? kTextColumn - text.size() : 1, ' ') +
                std::string(note);
    return text + "\n";
}

// One group of records that read the same value, told as its reads and writes in time order.
TraceExample tell(std::vector<const TraceRecord*> group)
{
    std::vector<Event> events;
    for (auto* r : group) {
        events.push_back({r->acquired_ns, r, false});
        events.push_back({r->unlock_ns, r, true});
    }
    std::stable_sort(events.begin(), events.end(),
                     [](const Event& a, const Event& b) { return a.ns < b.ns; });
    TraceExample ex;
    const std::int64_t t0 = events.front().ns;
    int inside = 0;
    std::size_t writes = 0;
    for (const Event& e : events) {
        // e.ns >= t0: their difference is exact unsigned, where int64 overflowed on records that
        // span more than 292 years (a hostile or torn record; found by fuzz_trace_analysis).
        double at =
            static_cast<double>(static_cast<std::uint64_t>(e.ns) - static_cast<std::uint64_t>(t0)) /
            1e6;
        std::string note;
        if (!e.is_write && ++inside > 1)
            note = inside == 2 ? "<- both inside the \"locked\" section at once"
                               : fmt::format("<- {} inside the \"locked\" section at once", inside);
        if (e.is_write) --inside;
        if (e.is_write && ++writes == group.size())
            note = group.size() == 2 ? "-> one update lost"
                                     : fmt::format("-> {} updates lost", group.size() - 1);
        ex.text += line(fmt::format("{} {} {} at {:.3f} ms", who(*e.record, group),
                                    e.is_write ? "wrote" : "read",
                                    e.is_write ? e.record->wrote : e.record->read, at),
                        note);
    }
    for (auto* r : group) ex.seqs.push_back(r->seq);
    std::sort(ex.seqs.begin(), ex.seqs.end());
    return ex;
}

// Records that read one value, split into runs that raced: each one read before an earlier one of
// its run wrote. Two that read the same value far apart in time (a DELETE reset it in between)
// did not lose anything.
std::vector<std::vector<const TraceRecord*>> racing(std::vector<const TraceRecord*> same_read)
{
    std::sort(same_read.begin(), same_read.end(),
              [](auto* x, auto* y) { return x->acquired_ns < y->acquired_ns; });
    std::vector<std::vector<const TraceRecord*>> runs;
    std::int64_t run_end = 0;
    for (auto* r : same_read) {
        if (runs.empty() || r->acquired_ns >= run_end) {
            runs.emplace_back();
            run_end = r->unlock_ns;
        }
        runs.back().push_back(r);
        run_end = std::max(run_end, r->unlock_ns);
    }
    return runs;
}

struct Replay {
    std::uint64_t lost = 0, lost_min = 0, lost_max = 0;
};

std::uint64_t clamped(std::uint64_t lost) noexcept
{
    return static_cast<std::int64_t>(lost) > 0 ? lost : 0;
}

// Differences of counter values, modulo 2^64 as the replay counts, as a signed shift (sums of
// shifts are taken unsigned: a hostile trace must not overflow them).
std::int64_t shift(std::uint64_t to, std::uint64_t from) noexcept
{
    return static_cast<std::int64_t>(to - from);
}

// The range of `lost` over the other orders the records allow (trace_analysis.h): the sum is
// n - (last write - first read), so only two choices matter. The value before the first write
// landed was read by every section that read before it; the section whose write landed first
// acquired before the first section by unlock_ns ended, so its read is among those. The write that
// landed last is the last section's or one that ended after the last section acquired.
void widen(Replay& replay, const std::vector<const TraceRecord*>& sections, std::size_t first_reset,
           std::size_t since_reset, std::uint64_t final_value)
{
    std::int64_t first_low = 0, first_high = 0, last_low = 0, last_high = 0;
    if (first_reset > 0) { // the story starts with a write: its initial value is not known
        const TraceRecord* first = sections.front();
        for (std::size_t i = 1; i < first_reset; ++i) {
            if (sections[i]->acquired_ns >= first->unlock_ns) continue;
            first_low = std::min(first_low, shift(sections[i]->read, first->read));
            first_high = std::max(first_high, shift(sections[i]->read, first->read));
        }
    }
    const TraceRecord* last = sections.back();
    if (last->outcome != TraceOutcome::reset) {
        for (std::size_t i = since_reset; i + 1 < sections.size(); ++i) {
            if (sections[i]->unlock_ns <= last->acquired_ns) continue;
            last_low = std::min(last_low, shift(final_value, sections[i]->wrote));
            last_high = std::max(last_high, shift(final_value, sections[i]->wrote));
        }
    }
    // Counters a few updates apart never wrap here; a torn or hostile trace may, so the bounds are
    // also held to the replay's own figure (found by fuzz_trace_analysis).
    const std::uint64_t lost = clamped(replay.lost);
    replay.lost_min = std::min(lost, clamped(replay.lost + static_cast<std::uint64_t>(first_low) +
                                             static_cast<std::uint64_t>(last_low)));
    replay.lost_max = std::max(lost, clamped(replay.lost + static_cast<std::uint64_t>(first_high) +
                                             static_cast<std::uint64_t>(last_high)));
}

// replay_lost: the file's story (see trace_analysis.h), from the key's written and reset records.
Replay replay_lost(std::vector<const TraceRecord*> sections)
{
    std::stable_sort(sections.begin(), sections.end(),
                     [](auto* x, auto* y) { return x->unlock_ns < y->unlock_ns; });
    bool known = false; // the file's value before the first write is what that write read
    // Modulo 2^64, as the counter itself counts (read + 1 wraps): a counter near 2^63 made the
    // signed differences overflow; the sum is right whenever the true one fits in 63 bits.
    std::uint64_t value = 0, lost = 0;
    std::size_t first_reset = sections.size(), since_reset = 0;
    for (std::size_t i = 0; i < sections.size(); ++i) {
        const TraceRecord* r = sections[i];
        if (r->outcome == TraceOutcome::reset) {
            value = 0;
            known = true;
            first_reset = std::min(first_reset, i);
            since_reset = i + 1;
            continue;
        }
        if (!known) value = r->read;
        known = true;
        lost += value - r->read; // 0: it read what the file held
        value = r->wrote;
    }
    Replay replay{lost, 0, 0};
    if (!sections.empty()) widen(replay, sections, first_reset, since_reset, value);
    replay.lost = clamped(lost);
    return replay;
}

} // namespace

std::uint64_t count_overlaps(std::vector<TraceRecord> held)
{
    std::erase_if(held, [](const TraceRecord& r) { return !r.held() || r.unlock_ns == 0; });
    std::sort(held.begin(), held.end(),
              [](auto& a, auto& b) { return a.acquired_ns < b.acquired_ns; });
    std::uint64_t overlaps = 0;
    for (std::size_t i = 0; i < held.size(); ++i)
        for (std::size_t j = i + 1; j < held.size() && held[j].acquired_ns < held[i].unlock_ns; ++j)
            overlaps += !same_thread(held[i], held[j]);
    return overlaps;
}

TraceAnalysis analyze_trace(const std::vector<TraceRecord>& records, std::string_view key,
                            std::size_t max_examples)
{
    TraceAnalysis a;
    a.key = std::string(key);
    std::vector<TraceRecord> mine;
    std::map<std::uint64_t, std::vector<const TraceRecord*>> by_read;
    std::vector<const TraceRecord*> file_story;
    for (const auto& r : records)
        if (r.key_view() == key) mine.push_back(r);
    for (const auto& r : mine) {
        if (r.outcome == TraceOutcome::reset) file_story.push_back(&r);
        if (!wrote(r.outcome)) continue;
        ++a.increments;
        by_read[r.read].push_back(&r);
        file_story.push_back(&r);
    }
    const Replay replay = replay_lost(std::move(file_story));
    a.lost = replay.lost;
    a.lost_min = replay.lost_min;
    a.lost_max = replay.lost_max;
    std::vector<std::vector<const TraceRecord*>> groups;
    for (auto& [value, same_read] : by_read)
        for (auto& group : racing(std::move(same_read)))
            if (group.size() >= 2) groups.push_back(std::move(group));
    auto first_read = [](auto& g) {
        return (*std::min_element(g.begin(), g.end(),
                                  [](auto* x, auto* y) { return x->acquired_ns < y->acquired_ns; }))
            ->acquired_ns;
    };
    std::sort(groups.begin(), groups.end(),
              [&](auto& x, auto& y) { return first_read(x) < first_read(y); });
    for (std::size_t i = 0; i < groups.size() && i < max_examples; ++i)
        a.examples.push_back(tell(groups[i]));
    a.overlaps = count_overlaps(std::move(mine));
    return a;
}

} // namespace forklock
