// WaitRegistry: who waits on which slot, one lock-free record per waiter, forgettable by pid.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <vector>

#include "harness/child.h"
#include "harness/wait.h"
#include "locks/table/wait_registry.h"
#include "os/memory_region.h"

using namespace forklock;
using namespace forklock::harness;

TEST_CASE("WaitRegistry: count_by_slot counts each waiter on its slot until it leaves",
          "[wait_registry]")
{
    WaitRegistry w(MemoryRegion::Sharing::private_copy);
    CHECK(w.count_by_slot(4) == std::vector<std::uint32_t>{0, 0, 0, 0});
    const int a = w.enter(100, 2);
    const int b = w.enter(101, 2);
    const int c = w.enter(100, 0);
    REQUIRE(a != WaitRegistry::kNoRecord);
    REQUIRE(b != WaitRegistry::kNoRecord);
    REQUIRE(c != WaitRegistry::kNoRecord);
    CHECK(std::set<int>{a, b, c}.size() == 3); // one record each
    CHECK(w.count_by_slot(4) == std::vector<std::uint32_t>{1, 0, 2, 0});
    w.leave(b);
    CHECK(w.count_by_slot(4) == std::vector<std::uint32_t>{1, 0, 1, 0});
    w.leave(a);
    w.leave(c);
    CHECK(w.count_by_slot(4) == std::vector<std::uint32_t>{0, 0, 0, 0});
}

TEST_CASE("WaitRegistry: count_by_slot ignores slots beyond the ones asked for", "[wait_registry]")
{
    WaitRegistry w(MemoryRegion::Sharing::private_copy);
    const int r = w.enter(7, 9);
    CHECK(w.count_by_slot(3) == std::vector<std::uint32_t>{0, 0, 0});
    CHECK(w.count_by_slot(10).at(9) == 1);
    w.leave(r);
}

TEST_CASE("WaitRegistry: forget clears every record of one pid and names their slots",
          "[wait_registry]")
{
    WaitRegistry w(MemoryRegion::Sharing::private_copy);
    (void)w.enter(500, 1);
    (void)w.enter(500, 3);
    (void)w.enter(500, 3);
    const int other = w.enter(501, 3);
    std::vector<std::uint32_t> slots = w.forget(500);
    std::sort(slots.begin(), slots.end());
    CHECK(slots == std::vector<std::uint32_t>{1, 3, 3});
    CHECK(w.count_by_slot(4) == std::vector<std::uint32_t>{0, 0, 0, 1}); // 501 still waits
    CHECK(w.forget(500).empty());
    w.leave(other);
    CHECK(w.count_by_slot(4) == std::vector<std::uint32_t>{0, 0, 0, 0});
}

TEST_CASE(
    "WaitRegistry: when every record is taken enter records nothing, and leave of that is harmless",
    "[wait_registry]")
{
    WaitRegistry w(MemoryRegion::Sharing::private_copy);
    std::vector<int> records;
    for (std::size_t i = 0; i < WaitRegistry::kRecords; ++i) {
        records.push_back(w.enter(42, 0));
        REQUIRE(records.back() != WaitRegistry::kNoRecord);
    }
    const int extra = w.enter(42, 1);
    CHECK(extra == WaitRegistry::kNoRecord);
    w.leave(extra);
    const auto counts = w.count_by_slot(2);
    CHECK(counts[0] == WaitRegistry::kRecords);
    CHECK(counts[1] == 0);
    w.leave(records.front()); // one free record: the next waiter is counted again
    CHECK(w.enter(42, 1) != WaitRegistry::kNoRecord);
    CHECK(w.count_by_slot(2)[1] == 1);
}

TEST_CASE("WaitRegistry: shared, a killed child's records stay until the parent forgets its pid",
          "[wait_registry][fork]")
{
    WaitRegistry w(MemoryRegion::Sharing::shared);
    MemoryRegion flag(sizeof(std::atomic<int>), MemoryRegion::Sharing::shared);
    auto& entered = *new (flag.data()) std::atomic<int>{0};
    Child child([&]() -> int {
        (void)w.enter(::getpid(), 5);
        (void)w.enter(::getpid(), 6);
        entered = 1;
        for (;;) ::pause(); // a waiter blocked until killed
    });
    REQUIRE(wait_until([&] { return entered.load() == 1; }));
    const int mine = w.enter(::getpid(), 5);
    CHECK(w.count_by_slot(8) == std::vector<std::uint32_t>{0, 0, 0, 0, 0, 2, 1, 0});
    child.kill();
    CHECK(w.count_by_slot(8)[5] == 2); // nobody told the registry yet
    std::vector<std::uint32_t> slots = w.forget(child.pid());
    std::sort(slots.begin(), slots.end());
    CHECK(slots == std::vector<std::uint32_t>{5, 6});
    CHECK(w.count_by_slot(8) == std::vector<std::uint32_t>{0, 0, 0, 0, 0, 1, 0, 0}); // ours stays
    w.leave(mine);
}

TEST_CASE("WaitRegistry: private, a child's waiters are its own copy's", "[wait_registry][fork]")
{
    WaitRegistry w(MemoryRegion::Sharing::private_copy);
    Child child([&] {
        const int r = w.enter(::getpid(), 1);
        return r != WaitRegistry::kNoRecord && w.count_by_slot(2)[1] == 1 ? 0 : 1;
    });
    REQUIRE(child.wait() == 0);
    CHECK(w.count_by_slot(2)[1] == 0);
}
