// LockMetrics: Prometheus-shaped histograms and the overlap counter, shared across fork.

#include <catch2/catch.hpp>

#include "harness/child.h"
#include "trace/histogram.h"

using namespace forklock;

TEST_CASE("Histogram: buckets are cumulative, bounds inclusive, +Inf is the count", "[histogram]")
{
    LockMetrics m;
    m.wait().observe(500);            // <= 1 us
    m.wait().observe(1'000);          // <= 1 us (le is inclusive)
    m.wait().observe(2'000'000);      // <= 10 ms
    m.wait().observe(20'000'000'000); // +Inf only
    auto s = m.wait().snapshot();
    CHECK(s.cumulative[0] == 2);
    CHECK(s.cumulative[3] == 2);
    CHECK(s.cumulative[4] == 3);
    CHECK(s.cumulative[7] == 3);
    CHECK(s.cumulative[8] == 4);
    CHECK(s.count == 4);
    CHECK(s.sum_seconds == Approx(20.0020015));
    CHECK(m.hold().snapshot().count == 0);
}

TEST_CASE("LockMetrics: a second holder inside the same key counts one overlap", "[histogram]")
{
    LockMetrics m;
    CHECK_FALSE(m.enter("k"));
    CHECK(m.enter("k"));
    m.leave("k");
    m.leave("k");
    CHECK_FALSE(m.enter("k"));
    m.leave("k");
    CHECK(m.overlaps() == 1);
}

TEST_CASE("LockMetrics: counts from forked children are seen by the parent", "[histogram]")
{
    LockMetrics m;
    CHECK_FALSE(m.enter("held-by-parent"));
    forklock::harness::Child child([&] {
        m.hold().observe(5'000);
        return m.enter("held-by-parent") ? 0 : 1; // the parent is inside: an overlap
    });
    CHECK(child.wait() == 0);
    CHECK(m.hold().snapshot().count == 1);
    CHECK(m.overlaps() == 1);
}
