// Fuzz target: the trace analysis. The first byte picks how the records are made from the rest:
//  - even: raw records, every field from the fuzz bytes (a torn or hostile trace): analyze_trace
//    must not crash, and its counts stay within what it was given;
//  - odd: a history simulated on one counter file: each step starts a section (it reads the
//    file), ends one (it writes what it read + 1, or 0 for a reset), all at distinct times. Then
//    the analysis must replay it exactly: with no reset, lost == increments - (final - initial),
//    so lost < increments; sections that never overlapped show no overlap and no loss.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "trace/trace_analysis.h"

namespace {

using forklock::TraceOutcome;
using forklock::TraceRecord;

struct Bytes {
    const std::uint8_t* data;
    std::size_t size;
    std::uint8_t next() { return size ? (--size, *data++) : 0; }
    std::uint64_t next64()
    {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = v << 8 | next();
        return v;
    }
};

void check(bool ok, const char* what)
{
    if (ok) return;
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
}

std::vector<TraceRecord> raw_records(Bytes& in)
{
    std::vector<TraceRecord> records;
    while (in.size > 0 && records.size() < 256) {
        TraceRecord r;
        r.seq = records.size();
        r.requested_ns = static_cast<std::int64_t>(in.next64());
        r.acquired_ns = static_cast<std::int64_t>(in.next64());
        r.unlock_ns = static_cast<std::int64_t>(in.next64());
        r.released_ns = static_cast<std::int64_t>(in.next64());
        r.read = in.next64();
        r.wrote = in.next64();
        r.pid = in.next() % 4;
        r.tid = in.next() % 4;
        r.outcome = static_cast<TraceOutcome>(in.next() % 6);
        r.set_key(in.next() % 2 ? "k" : "other");
        records.push_back(r);
    }
    return records;
}

struct Simulation {
    std::vector<TraceRecord> records;
    std::uint64_t initial = 0, final_value = 0, increments = 0;
    bool reset = false, overlapped = false;
};

// Up to 4 threads, each inside a section or not; a byte says which thread acts next.
Simulation simulate(Bytes& in)
{
    Simulation s;
    s.initial = s.final_value = in.next() % 8;
    TraceRecord open[4];
    bool inside[4] = {};
    int open_count = 0;
    std::int64_t now = 1000;
    while (in.size > 0 && s.records.size() < 256) {
        std::uint8_t b = in.next();
        int t = b % 4;
        now += 1 + (b >> 4);
        TraceRecord& r = open[t];
        if (!inside[t]) {
            r = TraceRecord{};
            r.seq = s.records.size() + static_cast<std::uint64_t>(open_count);
            r.pid = 100 + t;
            r.tid = 100 + t;
            r.requested_ns = now - 1;
            r.acquired_ns = now;
            r.read = s.final_value;
            r.outcome = (b & 8) && in.next() == 0 ? TraceOutcome::reset : TraceOutcome::written;
            r.set_key("k");
            inside[t] = true;
            s.overlapped = s.overlapped || ++open_count > 1;
            continue;
        }
        r.unlock_ns = now;
        r.released_ns = now + 1;
        ++now;
        r.wrote = r.outcome == TraceOutcome::reset ? 0 : r.read + 1;
        s.final_value = r.wrote;
        s.reset = s.reset || r.outcome == TraceOutcome::reset;
        s.increments += r.outcome == TraceOutcome::written;
        inside[t] = false;
        --open_count;
        s.records.push_back(r);
    }
    return s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    Bytes in{data, size};
    const bool simulated = in.next() % 2;
    if (!simulated) {
        auto records = raw_records(in);
        auto a = forklock::analyze_trace(records, "k", 2);
        std::uint64_t written = 0;
        for (const auto& r : records)
            written += r.key_view() == "k" && r.outcome == TraceOutcome::written;
        check(a.increments == written, "increments == written records of the key");
        check(a.examples.size() <= 2, "examples <= max_examples");
        for (const auto& ex : a.examples)
            check(ex.seqs.size() >= 2, "an example tells >= 2 records");
        check(a.lost_min <= a.lost && a.lost <= a.lost_max, "lost_min <= lost <= lost_max");
        return 0;
    }
    Simulation s = simulate(in);
    auto a = forklock::analyze_trace(s.records, "k");
    check(a.increments == s.increments, "increments == written sections");
    check(a.lost <= a.increments, "lost <= increments");
    check(a.lost_min <= a.lost && a.lost <= a.lost_max, "lost_min <= lost <= lost_max");
    if (!s.overlapped) check(a.lost_min == a.lost_max, "serial sections: one order");
    if (!s.reset)
        check(a.lost == s.increments - (s.final_value - s.initial),
              "lost == increments - (final - initial)");
    if (!s.overlapped)
        check(a.overlaps == 0 && a.lost == 0, "serial sections: no overlap, no loss");
    if (s.overlapped) check(a.overlaps > 0 || a.lost == 0, "a loss needs an overlap");
    return 0;
}
