// TraceRing: lock-free writers from many processes, readers that never see a torn record, a
// writer killed mid-record, wrap-around and `dropped`.

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <map>
#include <set>

#include "harness/child.h"
#include "trace/trace_ring.h"

using namespace forklock;
using forklock::harness::Child;

namespace {

// A record whose fields all derive from (pid, i): a torn copy breaks one of the relations.
TraceRecord made(int pid, std::uint64_t i)
{
    TraceRecord r;
    r.pid = pid;
    r.tid = pid + 1;
    r.read = i;
    r.wrote = i + 1;
    r.requested_ns = static_cast<std::int64_t>(i * 10);
    r.acquired_ns = r.requested_ns + 1;
    r.unlock_ns = r.requested_ns + 2;
    r.released_ns = r.requested_ns + 3;
    r.set_key("key-" + std::to_string(pid));
    return r;
}

bool whole(const TraceRecord& r)
{
    return r.tid == r.pid + 1 && r.wrote == r.read + 1 &&
           r.requested_ns == static_cast<std::int64_t>(r.read * 10) &&
           r.released_ns == r.requested_ns + 3 && r.key_view() == "key-" + std::to_string(r.pid);
}

} // namespace

TEST_CASE("TraceRing: a record reads back as written, with its seq", "[trace_ring]")
{
    TraceRing ring(16);
    ring.record(made(7, 0));
    ring.record(made(7, 1));
    auto got = ring.read(0, 16);
    REQUIRE(got.records.size() == 2);
    CHECK(got.records[1].seq == 1);
    CHECK(got.records[1].read == 1);
    CHECK(got.records[1].key_view() == "key-7");
    CHECK(got.next == 2);
    CHECK(got.dropped == 0);
}

TEST_CASE("TraceRing: a record being written is skipped until it is finished", "[trace_ring]")
{
    TraceRing ring(16);
    ring.record(made(7, 0));
    std::uint64_t seq = ring.start_record();
    CHECK(seq == 1);
    auto during = ring.read(0, 16);
    REQUIRE(during.records.size() == 1);
    CHECK(during.records[0].seq == 0);
    ring.finish_record(seq, made(7, 1));
    auto after = ring.read(0, 16);
    REQUIRE(after.records.size() == 2);
    CHECK(whole(after.records[1]));
}

TEST_CASE("TraceRing: capacity must be a power of two within bounds", "[trace_ring]")
{
    CHECK_THROWS_AS(TraceRing(100), std::invalid_argument);
    CHECK_THROWS_AS(TraceRing(8), std::invalid_argument);
    CHECK(TraceRing(64).capacity() == 64);
}

TEST_CASE("TraceRing: writers in forked processes all land whole while a reader reads",
          "[trace_ring]")
{
    constexpr int kWriters = 4;
    constexpr std::uint64_t kEach = 5000;
    TraceRing ring(32768);
    std::vector<Child> children;
    for (int w = 0; w < kWriters; ++w)
        children.emplace_back([&] {
            for (std::uint64_t i = 0; i < kEach; ++i) ring.record(made(::getpid(), i));
            return 0;
        });
    std::size_t torn = 0, reads = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (ring.head() < kWriters * kEach && std::chrono::steady_clock::now() < deadline) {
        std::uint64_t head = ring.head(); // all of them, then the newest: those being written now
        for (std::uint64_t since : {std::uint64_t{0}, head > 64 ? head - 64 : 0})
            for (const auto& r : ring.read(since, ring.capacity()).records)
                if (!whole(r)) ++torn;
        ++reads;
    }
    INFO("reads while writing: " << reads);
    for (Child& c : children) CHECK(c.wait() == 0);
    auto got = ring.read(0, ring.capacity());
    std::map<int, std::set<std::uint64_t>> by_pid;
    for (const auto& r : got.records) {
        CHECK(whole(r));
        by_pid[r.pid].insert(r.read);
    }
    CHECK(torn == 0);
    CHECK(got.records.size() == kWriters * kEach);
    CHECK(by_pid.size() == kWriters);
    for (auto& [pid, reads] : by_pid) CHECK(reads.size() == kEach);
}

TEST_CASE("TraceRing: a writer killed mid-record is skipped and later writers proceed",
          "[trace_ring]")
{
    TraceRing ring(16);
    ring.record(made(1, 0));
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    Child child([&] {
        (void)ring.start_record(); // and never finish it
        char c = 'x';
        (void)!::write(ready[1], &c, 1);
        ::pause();
        return 0;
    });
    char c;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    CHECK(child.kill() == 128 + SIGKILL);
    ::close(ready[0]);
    ::close(ready[1]);
    ring.record(made(1, 2));
    auto got = ring.read(0, 16);
    REQUIRE(got.records.size() == 2); // seq 1 is the dead writer's: skipped
    CHECK(got.records[0].seq == 0);
    CHECK(got.records[1].seq == 2);
    CHECK(got.next == 3);
    for (std::uint64_t i = 3; i < 18; ++i)
        ring.record(made(1, i)); // a lap later, seq 17 takes its slot
    auto lap = ring.read(17, 16);
    REQUIRE(lap.records.size() == 1);
    CHECK(lap.records[0].seq == 17);
    CHECK(whole(lap.records[0]));
}

TEST_CASE("TraceRing: wrap-around keeps the newest records and counts the dropped ones",
          "[trace_ring]")
{
    TraceRing ring(16);
    for (std::uint64_t i = 0; i < 40; ++i) ring.record(made(3, i));
    auto got = ring.read(0, 16);
    CHECK(got.dropped == 24);
    REQUIRE(got.records.size() == 16);
    CHECK(got.records.front().seq == 24);
    CHECK(got.records.back().seq == 39);
    CHECK(got.next == 40);
    auto later = ring.read(30, 16);
    CHECK(later.dropped == 0);
    CHECK(later.records.size() == 10);
    auto beyond = ring.read(40, 16);
    CHECK(beyond.records.empty());
    CHECK(beyond.next == 40);
}

TEST_CASE("TraceRing: read honours limit and key, and next resumes after the last record scanned",
          "[trace_ring]")
{
    TraceRing ring(64);
    for (std::uint64_t i = 0; i < 10; ++i) ring.record(made(i % 2 == 0 ? 2 : 5, i));
    auto first = ring.read(0, 3);
    CHECK(first.records.size() == 3);
    CHECK(first.next == 3);
    auto fives = ring.read(0, 64, std::string_view("key-5"));
    CHECK(fives.records.size() == 5);
    for (const auto& r : fives.records) CHECK(r.pid == 5);
    CHECK(ring.read(0, 64, std::string_view("never")).records.empty());
}

TEST_CASE("TraceRing: a record whose checksum does not match is not returned", "[trace_ring]")
{
    TraceRecord r = made(4, 1);
    r.checksum = trace_checksum(r);
    TraceRecord torn = r;
    torn.read = 2; // as if a lapped writer changed a field under a whole stamp
    CHECK(trace_checksum(torn) != r.checksum);
    CHECK(trace_checksum(r) == r.checksum);
}
