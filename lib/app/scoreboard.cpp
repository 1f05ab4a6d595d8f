#include "app/scoreboard.h"

#include <chrono>
#include <new>

namespace forklock {

struct Scoreboard::Region {
    SharedTotals totals;
    std::array<WorkerSlot, kMaxWorkers> slots;
};
static_assert(std::is_standard_layout_v<std::array<WorkerSlot, kMaxWorkers>>);

const char* to_string(WorkerState state) noexcept
{
    switch (state) {
    case WorkerState::free: return "free";
    case WorkerState::booting: return "booting";
    case WorkerState::idle: return "idle";
    case WorkerState::busy: return "busy";
    case WorkerState::stopping: return "stopping";
    }
    return "?";
}

Scoreboard::Scoreboard(pid_t master_pid) : mapping_(sizeof(Region), MemoryRegion::Sharing::shared)
{
    auto* r = new (mapping_.data()) Region{};
    r->totals.master_pid = master_pid;
}

Scoreboard::Region* Scoreboard::region() const noexcept
{
    return static_cast<Region*>(mapping_.data());
}

std::int64_t Scoreboard::now_ns() noexcept
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::optional<std::size_t> Scoreboard::claim(std::uint32_t threads)
{
    for (std::size_t i = 0; i < kMaxWorkers; ++i) {
        WorkerSlot& s = region()->slots[i];
        if (s.state.load() != static_cast<std::uint32_t>(WorkerState::free)) continue;
        auto now = now_ns();
        s.pid = 0;
        s.threads = threads;
        s.busy_threads = 0;
        s.born_ns = now;
        s.requests = 0;
        s.connections = 0;
        s.cap_reached = 0;
        s.accept_backoffs = 0;
        for (auto& hb : s.heartbeat_ns) hb = now;
        s.state = static_cast<std::uint32_t>(WorkerState::booting);
        region()->totals.loops.fetch_add(threads);
        return i;
    }
    return std::nullopt;
}

void Scoreboard::release(std::size_t slot) noexcept
{
    region()->totals.loops.fetch_sub(region()->slots[slot].threads);
    region()->slots[slot].pid = 0;
    region()->slots[slot].state = static_cast<std::uint32_t>(WorkerState::free);
}

WorkerSlot& Scoreboard::slot(std::size_t index) noexcept { return region()->slots[index]; }

SharedTotals& Scoreboard::totals() noexcept { return region()->totals; }

std::int64_t Scoreboard::oldest_heartbeat_ns(std::size_t index) const noexcept
{
    const WorkerSlot& s = region()->slots[index];
    auto threads = std::min<std::size_t>(s.threads.load(), kMaxThreads);
    std::int64_t oldest = s.heartbeat_ns[0].load();
    for (std::size_t t = 1; t < threads; ++t) oldest = std::min(oldest, s.heartbeat_ns[t].load());
    return oldest;
}

std::vector<WorkerSnapshot> Scoreboard::snapshot() const
{
    std::vector<WorkerSnapshot> out;
    auto now = now_ns();
    for (std::size_t i = 0; i < kMaxWorkers; ++i) {
        const WorkerSlot& s = region()->slots[i];
        auto state = static_cast<WorkerState>(s.state.load());
        pid_t pid = s.pid.load();
        if (state == WorkerState::free || pid == 0) continue;
        const std::uint32_t in_flight = s.busy_threads.load();
        if (state == WorkerState::idle && in_flight > 0) state = WorkerState::busy;
        WorkerSnapshot w{i, pid, state, static_cast<double>(now - s.born_ns.load()) / 1e9,
                         s.requests.load()};
        w.connections = s.connections.load();
        w.cap_reached = s.cap_reached.load();
        w.accept_backoffs = s.accept_backoffs.load();
        w.oldest_heartbeat_ns = oldest_heartbeat_ns(i);
        w.in_flight = in_flight;
        out.push_back(w);
    }
    return out;
}

} // namespace forklock
