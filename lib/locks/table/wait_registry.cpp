#include "locks/table/wait_registry.h"

#include <atomic>
#include <functional>
#include <new>
#include <thread>
#include <utility>

namespace forklock {
namespace {

using Record = std::atomic<std::uint64_t>; // pid << 32 | (slot + 1); 0 = free
static_assert(Record::is_always_lock_free);

std::uint64_t make_record(pid_t pid, std::uint32_t slot)
{
    return std::uint64_t{static_cast<std::uint32_t>(pid)} << 32 | (std::uint64_t{slot} + 1);
}
pid_t record_pid(std::uint64_t r) { return static_cast<pid_t>(r >> 32); }
std::uint32_t record_slot(std::uint64_t r) { return static_cast<std::uint32_t>(r) - 1; }

} // namespace

WaitRegistry::WaitRegistry(MemoryRegion::Sharing sharing)
    : WaitRegistry(MemoryRegion(kBytes, sharing), false)
{
}

WaitRegistry::WaitRegistry(MemoryRegion region, bool attach) : region_(std::move(region))
{
    static_assert(sizeof(Record) * kRecords == kBytes);
    if (attach) return;
    auto* records = static_cast<Record*>(region_.data());
    for (std::size_t i = 0; i < kRecords; ++i) new (&records[i]) Record{0};
}

int WaitRegistry::enter(pid_t pid, std::uint32_t slot) noexcept
{
    auto* records = static_cast<Record*>(region_.data());
    // Start where this thread's id points, so concurrent waiters rarely try the same record.
    const std::size_t start = std::hash<std::thread::id>{}(std::this_thread::get_id()) % kRecords;
    const std::uint64_t mine = make_record(pid, slot);
    for (std::size_t n = 0; n < kRecords; ++n) {
        const std::size_t i = (start + n) % kRecords;
        std::uint64_t expected = 0;
        if (records[i].load(std::memory_order_relaxed) == 0 &&
            records[i].compare_exchange_strong(expected, mine, std::memory_order_relaxed))
            return static_cast<int>(i);
    }
    return kNoRecord;
}

void WaitRegistry::leave(int record) noexcept
{
    if (record != kNoRecord)
        static_cast<Record*>(region_.data())[record].store(0, std::memory_order_relaxed);
}

std::vector<std::uint32_t> WaitRegistry::forget(pid_t pid)
{
    auto* records = static_cast<Record*>(region_.data());
    std::vector<std::uint32_t> slots;
    for (std::size_t i = 0; i < kRecords; ++i) {
        std::uint64_t r = records[i].load(std::memory_order_relaxed);
        // The pid is dead, so its records cannot change under us; the CAS only guards a slip.
        if (r != 0 && record_pid(r) == pid && records[i].compare_exchange_strong(r, 0))
            slots.push_back(record_slot(r));
    }
    return slots;
}

std::vector<std::uint32_t> WaitRegistry::count_by_slot(std::size_t slots) const
{
    const auto* records = static_cast<const Record*>(region_.data());
    std::vector<std::uint32_t> counts(slots, 0);
    for (std::size_t i = 0; i < kRecords; ++i)
        if (const std::uint64_t r = records[i].load(std::memory_order_relaxed);
            r != 0 && record_slot(r) < slots)
            ++counts[record_slot(r)];
    return counts;
}

} // namespace forklock
