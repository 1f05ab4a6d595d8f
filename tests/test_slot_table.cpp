// SlotTable with a fake lock policy: the dictionary (binding, eviction, backward-shift deletion)
// checked against a std::map model, and the repair of a partition whose locker was killed in it.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "harness/child.h"
#include "harness/wait.h"
#include <forklock/lock_errors.h>
#include "locks/table/slot_table.h"
#include "os/memory_region.h"

using namespace forklock;
using namespace forklock::harness;

namespace {

// Where a FakeLocks call stops forever (for a child to be killed there).
enum class Stall : int { nowhere, after_claim, in_hand_over };

// What the fake shares between the processes of a test (MAP_SHARED).
struct FakeControl {
    std::atomic<pid_t> stall_pid;  // only this process stalls...
    std::atomic<Stall> stall_at;   // ...and only here
    std::atomic<int> stalled;      // it got there
    std::atomic<int> clear_calls;  // clear_dead_claim calls: a repair ran
    std::atomic<int> claims_freed; // dead claims clear_dead_claim let go
};

// FakeLocks: the lock of a slot is its owner_pid word, as in semaphore mode: 0 free, kClaimed while
// the table has claimed it, else the holder's pid. By reference, a slot is idle at refs == 0.
class FakeLocks final : public SlotLocks {
public:
    static constexpr pid_t kClaimed = -1;

    explicit FakeLocks(bool by_lock)
        : by_lock_(by_lock), memory_(sizeof(FakeControl), MemoryRegion::Sharing::shared),
          control_(*new (memory_.data()) FakeControl{})
    {
    }

    bool pinned_by_lock() const override { return by_lock_; }
    bool claim(Slot& s) override
    {
        if (!by_lock_) {
            stall_if(Stall::after_claim); // by reference, the generation is odd here
            return s.refs.load() == 0;
        }
        pid_t expected = 0;
        if (!s.owner_pid.compare_exchange_strong(expected, kClaimed)) return false;
        stall_if(Stall::after_claim);
        return true;
    }
    void hand_over(Slot& s) override
    {
        s.owner_pid = ::getpid();
        stall_if(Stall::in_hand_over);
    }
    void unclaim(Slot& s) noexcept override { s.owner_pid = 0; }
    void clear_dead_claim(Slot& s) override
    {
        ++control_.clear_calls;
        pid_t expected = kClaimed;
        if (s.owner_pid.compare_exchange_strong(expected, 0)) ++control_.claims_freed;
    }

    // The caller's side, by lock: take and let go of a slot's lock.
    static bool try_lock(Slot& s)
    {
        pid_t expected = 0;
        return s.owner_pid.compare_exchange_strong(expected, ::getpid());
    }
    static void unlock(Slot& s) { s.owner_pid = 0; }

    FakeControl& control() const { return control_; }

private:
    void stall_if(Stall here)
    {
        if (control_.stall_at.load() != here || control_.stall_pid.load() != ::getpid()) return;
        control_.stalled = 1;
        for (;;) ::pause(); // inside the partition lock until SIGKILLed
    }

    bool by_lock_;
    MemoryRegion memory_;
    FakeControl& control_;
};

// The tests' hash seed: fixed, so keys found to share a partition in one table share it in
// another, and a failure replays the same way.
constexpr std::uint64_t kTestSeed = 0x5eed;

// A SlotTable over its own memory and a FakeLocks, used as LockTable would use it.
struct Table {
    FakeLocks locks;
    MemoryRegion memory;
    SlotTable table;

    Table(bool by_lock, const TableGeometry& g, MemoryRegion::Sharing sharing,
          std::uint64_t seed = kTestSeed)
        : locks(by_lock), memory(g.region_bytes(), sharing),
          table(memory.data(), g,
                sharing == MemoryRegion::Sharing::shared ? MutexKind::shared_robust
                                                         : MutexKind::private_default,
                locks, seed)
    {
    }

    std::uint32_t id_of(const Slot& s) const
    {
        return static_cast<std::uint32_t>(&s - &table.slot(0));
    }

    // pin: the slot bound to `key`, kept from eviction until unpin (its lock held, or a reference).
    std::uint32_t pin(const std::string& key)
    {
        if (!locks.pinned_by_lock()) return id_of(table.acquire_ref(key));
        for (;;) {
            const SlotRef r = table.lookup(key);
            if (r.held) return id_of(*r.slot);
            REQUIRE(FakeLocks::try_lock(*r.slot)); // nobody else holds anything in these tests
            if (SlotTable::still_bound(r)) return id_of(*r.slot);
            FakeLocks::unlock(*r.slot);
        }
    }
    void unpin(std::uint32_t id)
    {
        if (locks.pinned_by_lock())
            FakeLocks::unlock(table.slot(id));
        else
            table.release_ref(table.slot(id));
    }
    // find: the slot `key` is bound to, pinned or not (binding it if it is not: see evictions()).
    std::uint32_t find(const std::string& key)
    {
        if (!locks.pinned_by_lock()) {
            Slot& s = table.acquire_ref(key);
            table.release_ref(s);
            return id_of(s);
        }
        const SlotRef r = table.lookup(key); // by lock, a hit takes no lock
        if (r.held) FakeLocks::unlock(*r.slot);
        return id_of(*r.slot);
    }
    std::uint64_t evictions() const { return table.stats().evictions; }
    // bound: every bound key and its slot, as for_each_bound sees them; a key seen twice fails.
    std::map<std::string, std::uint32_t> bound() const
    {
        std::map<std::string, std::uint32_t> keys;
        bool twice = false;
        table.for_each_bound([&](const Slot& s) {
            twice |= !keys.emplace(std::string(s.key_view()), id_of(s)).second;
        });
        CHECK_FALSE(twice);
        return keys;
    }
};

std::uint32_t partition_of_slot(const Slot& s) { return state_partition(s.state.load()); }

// keys_in_partition_0: `n` keys that all hash to partition 0 of a table of geometry g (found by
// binding candidates in a scratch table and reading the partition their slot was bound for).
std::vector<std::string> keys_in_partition_0(const TableGeometry& g, std::size_t n)
{
    Table scratch(false, g, MemoryRegion::Sharing::private_copy);
    std::vector<std::string> keys;
    for (int i = 0; keys.size() < n; ++i) {
        const std::string key = "p0-" + std::to_string(i);
        Slot& s = scratch.table.acquire_ref(key);
        if (partition_of_slot(s) == 0) keys.push_back(key);
        scratch.table.release_ref(s);
    }
    return keys;
}

std::vector<std::string> numbered_keys(std::size_t n)
{
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < n; ++i) keys.push_back("key-" + std::to_string(i));
    return keys;
}

// Model: the keys the table should have bound, each to the slot it was bound to; a key leaves
// the model when another key is bound to its slot (evicted).
struct Model {
    std::map<std::string, std::uint32_t> slot_of;
    std::map<std::uint32_t, int> pins; // slot -> times pinned by the test

    bool pinned(const std::string& key) const
    {
        const auto it = slot_of.find(key);
        return it != slot_of.end() && pins.count(it->second) && pins.at(it->second) > 0;
    }
    void bound_to(const std::string& key, std::uint32_t id)
    {
        if (const auto it = slot_of.find(key); it != slot_of.end()) {
            CHECK(it->second == id); // found where it was, not bound again
            return;
        }
        CHECK(pins[id] == 0); // a pinned slot is never evicted
        std::erase_if(slot_of, [&](const auto& kv) { return kv.second == id; });
        slot_of[key] = id;
    }
};

// check_against: the table holds exactly the model's keys, each found at its slot (by a lookup
// that binds and evicts nothing).
void check_against(Table& t, const Model& m)
{
    REQUIRE(t.bound() == m.slot_of);
    const std::uint64_t evictions = t.evictions();
    for (const auto& [key, id] : m.slot_of) REQUIRE(t.find(key) == id);
    REQUIRE(t.evictions() == evictions);
    REQUIRE(t.table.stats().keys == m.slot_of.size());
}

// churn: random binds, pins and unpins of `keys`, checked against the model after every step.
void churn(Table& t, const std::vector<std::string>& keys, std::size_t max_pinned, int steps,
           unsigned seed)
{
    std::mt19937 rng(seed);
    Model m;
    std::vector<std::pair<std::string, std::uint32_t>> pinned;
    for (int step = 0; step < steps; ++step) {
        const unsigned op = rng() % 10;
        if (op < 2 && !pinned.empty()) { // unpin one
            const std::size_t i = rng() % pinned.size();
            t.unpin(pinned[i].second);
            --m.pins[pinned[i].second];
            pinned.erase(pinned.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
            const std::string& key = keys[rng() % keys.size()];
            const bool keep = op < 4 && pinned.size() < max_pinned;
            if (m.pinned(key)) continue; // by lock, a second pin would wait for ourselves
            const std::uint32_t id = t.pin(key);
            m.bound_to(key, id);
            if (keep) {
                ++m.pins[id];
                pinned.emplace_back(key, id);
            } else {
                t.unpin(id);
            }
        }
        INFO("step " << step);
        check_against(t, m);
    }
    for (const auto& [key, id] : pinned) t.unpin(id);
}

} // namespace

TEST_CASE("SlotTable: after any sequence of binds and evictions every bound key is found, exactly",
          "[slot_table]")
{
    struct Row {
        const char* name;
        TableGeometry geometry;
        bool partition_0_only; // all keys collide in one partition of several
        std::size_t universe;
    };
    const Row row =
        GENERATE(Row{"one partition", TableGeometry::for_capacity(32), false, 100},
                 Row{"keys of one partition of 4", TableGeometry::for_capacity(256), true, 300},
                 Row{"keys of all 4 partitions", TableGeometry::for_capacity(256), false, 700});
    const bool by_lock = GENERATE(true, false);
    INFO(row.name << (by_lock ? ", pinned by lock" : ", pinned by reference"));
    if (row.partition_0_only) REQUIRE(row.geometry.partitions > 1);
    const std::vector<std::string> keys = row.partition_0_only
                                              ? keys_in_partition_0(row.geometry, row.universe)
                                              : numbered_keys(row.universe);
    Table t(by_lock, row.geometry, MemoryRegion::Sharing::private_copy);
    churn(t, keys, row.geometry.partition_limit / 4, 3000, 1234);
    const TableStats s = t.table.stats();
    CHECK(s.evictions > 500); // the sequence did evict, over and over
    CHECK(s.full_errors == 0);
}

TEST_CASE("SlotTable: a key of any length is found again, also in a slot a longer key had",
          "[slot_table]")
{
    // Keys are stored and compared as 8-byte words, the last one padded: every length from 1 to
    // the maximum, each beside a twin that differs in its last byte only.
    const std::string base(kSlotKeyBytes, 'k');
    std::vector<std::string> keys;
    for (std::size_t n = 1; n <= kSlotKeyBytes; ++n) {
        keys.push_back(base.substr(0, n));
        keys.push_back(base.substr(0, n - 1) + 'K');
    }
    Table t(true, TableGeometry::for_capacity(2 * keys.size()),
            MemoryRegion::Sharing::private_copy);
    Model m;
    for (const auto& key : keys) {
        const std::uint32_t id = t.pin(key);
        t.unpin(id);
        m.bound_to(key, id);
    }
    check_against(t, m);

    // A slot rebound from a long key to a shorter one keeps no byte of the old one in its words.
    Table one(true, TableGeometry::for_capacity(1), MemoryRegion::Sharing::private_copy);
    one.unpin(one.pin(base));
    one.unpin(one.pin(base.substr(0, 9))); // evicts the long key, same slot
    const std::uint64_t evictions = one.evictions();
    CHECK(one.find(base.substr(0, 9)) == 0);
    CHECK(one.evictions() == evictions); // found, not bound again
}

TEST_CASE("SlotTable: a key's partition fills to its limit, then a new key of it evicts in it",
          "[slot_table]")
{
    const TableGeometry g = TableGeometry::for_capacity(256);
    REQUIRE(g.partition_limit < g.capacity);
    const std::vector<std::string> keys = keys_in_partition_0(g, g.partition_limit + 1);
    Table t(true, g, MemoryRegion::Sharing::private_copy);
    std::vector<std::uint32_t> held;
    for (std::uint32_t i = 0; i < g.partition_limit; ++i) held.push_back(t.pin(keys[i]));
    // Every key of the partition held: the pool still has slots, but not for this partition.
    CHECK_THROWS_AS(t.pin(keys.back()), TableFullError);
    CHECK(t.table.stats().full_errors == 1);
    t.unpin(held.front());
    CHECK(t.pin(keys.back()) == held.front()); // the one idle slot of its own partition
    CHECK(t.bound().count(keys.front()) == 0);
}

TEST_CASE("SlotTable: keys aimed at one partition under one seed spread out under another",
          "[slot_table]")
{
    const TableGeometry g = TableGeometry::for_capacity(1024);
    REQUIRE(g.partitions == 16);
    const std::vector<std::string> aimed = keys_in_partition_0(g, 256); // under kTestSeed
    Table same(false, g, MemoryRegion::Sharing::private_copy, kTestSeed);
    Table other(false, g, MemoryRegion::Sharing::private_copy, kTestSeed + 1);
    std::map<std::uint32_t, int> spread;
    for (const auto& key : aimed) {
        CHECK(same.table.partition_for(key) == 0);
        ++spread[other.table.partition_for(key)];
    }
    // About 256 / 16 = 16 per partition under the other seed; all 256 in one would be the attack.
    CHECK(spread.size() >= 12);
    for (const auto& [partition, count] : spread) CHECK(count < 64);
}

TEST_CASE("SlotTable: tables made without a seed draw different random ones", "[slot_table]")
{
    const TableGeometry g = TableGeometry::for_capacity(64);
    Table a(false, g, MemoryRegion::Sharing::private_copy, SlotTable::kRandomSeed);
    Table b(false, g, MemoryRegion::Sharing::private_copy, SlotTable::kRandomSeed);
    CHECK(a.table.seed() != SlotTable::kRandomSeed);
    CHECK(a.table.seed() != b.table.seed());
}

TEST_CASE("SlotTable: a child killed inside a partition leaves it repaired for the next locker",
          "[slot_table][fork][recovery]")
{
    struct Row {
        const char* name;
        bool by_lock;
        Stall at;
    };
    const Row row =
        GENERATE(Row{"evicting: slot lock claimed", true, Stall::after_claim},
                 Row{"binding: key written, not yet indexed", true, Stall::in_hand_over},
                 Row{"evicting by reference: generation odd", false, Stall::after_claim});
    INFO(row.name);
    const TableGeometry g = TableGeometry::for_capacity(16);
    REQUIRE(g.partitions == 1);
    Table t(row.by_lock, g, MemoryRegion::Sharing::shared);
    for (std::uint32_t i = 0; i < g.capacity; ++i) // the pool empty: a new key must evict
        t.unpin(t.pin("old-" + std::to_string(i)));
    const std::map<std::string, std::uint32_t> before = t.bound();
    REQUIRE(before.size() == g.capacity);

    FakeControl& control = t.locks.control();
    control.stall_at = row.at;
    Child child([&] {
        control.stall_pid = ::getpid();
        (void)t.pin("new"); // stalls under the partition lock
        return 1;
    });
    REQUIRE(wait_until([&] { return control.stalled.load() == 1; }));
    child.kill();
    control.stall_at = Stall::nowhere;

    // The child is reaped: the next locker of the partition finds its pid gone and repairs it.
    REQUIRE(control.clear_calls.load() == 0);
    const std::map<std::string, std::uint32_t> after = t.bound();
    CHECK(control.clear_calls.load() > 0);
    if (row.by_lock && row.at == Stall::after_claim) CHECK(control.claims_freed.load() == 1);
    for (std::uint32_t i = 0; i < g.capacity; ++i)
        CHECK(t.table.slot(i).owner_pid.load() != FakeLocks::kClaimed);

    std::map<std::string, std::uint32_t> expected = before;
    if (row.at == Stall::in_hand_over) {
        // "new" took an evicted key's slot; the dead child holds it (its supervisor's business).
        REQUIRE(after.count("new") == 1);
        const std::uint32_t id = after.at("new");
        std::erase_if(expected, [&](const auto& kv) { return kv.second == id; });
        expected["new"] = id;
        CHECK(t.table.slot(id).owner_pid.load() == child.pid());
        FakeLocks::unlock(t.table.slot(id)); // as the supervisor would
    }
    CHECK(after == expected);
    CHECK(after.size() == g.capacity);
    const std::uint64_t evictions = t.evictions();
    for (const auto& [key, id] : after) CHECK(t.find(key) == id);
    CHECK(t.evictions() == evictions);

    // Repaired once, consistent from then on: binding works and no second repair runs.
    const int repairs = control.clear_calls.load();
    t.unpin(t.pin("newer"));
    CHECK(t.bound().size() == g.capacity);
    CHECK(t.bound().count("newer") == 1);
    CHECK(control.clear_calls.load() == repairs);
}
