#pragma once
// Scoreboard: the master's view of its workers, in one anonymous MAP_SHARED region created
// before fork (unicorn and nginx keep liveness in shared memory, not in files: a disk-backed
// heartbeat stalls under I/O load, gunicorn #1194).
//
// Shared across processes and threads: every field is a lock-free std::atomic, written by one
// party (the master claims and frees slots; a worker fills its own slot, each thread its own
// heartbeat). Readers get a snapshot that may mix instants, which is fine for monitoring.

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "os/memory_region.h"

namespace forklock {

inline constexpr std::size_t kMaxWorkers = 256;
inline constexpr std::size_t kMaxThreads = 64;

enum class WorkerState : std::uint32_t { free, booting, idle, busy, stopping };
const char* to_string(WorkerState state) noexcept;

struct WorkerSlot {
    std::atomic<pid_t> pid;             // 0 until the master has forked it
    std::atomic<std::uint32_t> state;   // WorkerState; busy is derived from busy_threads
    std::atomic<std::uint32_t> threads; // heartbeats that count
    std::atomic<std::uint32_t> busy_threads;
    std::atomic<std::int64_t> born_ns; // steady clock (CLOCK_MONOTONIC: one clock per host)
    std::atomic<std::uint64_t> requests;
    // Connections (server/http_adapter.h, "Limits"): open now, times a loop stopped accepting at
    // --worker-connections, and runs of failed accept() calls (EMFILE...).
    std::atomic<std::uint32_t> connections;
    std::atomic<std::uint64_t> cap_reached;
    std::atomic<std::uint64_t> accept_backoffs;
    std::array<std::atomic<std::int64_t>, kMaxThreads> heartbeat_ns;
};

// Totals every worker adds to: what /metrics reports across workers.
struct SharedTotals {
    std::atomic<pid_t> master_pid;
    std::atomic<std::uint64_t> restarts; // workers respawned after exiting on their own
    std::atomic<std::uint64_t> increments;
    std::atomic<std::uint64_t> lock_wait_ns;
    std::atomic<std::uint64_t> lock_hold_ns;
    std::atomic<std::uint64_t> lock_timeouts;
    // Accept turns (server/accept_turn.h): connections accepted by any loop, and how many loops
    // (worker threads) the claimed slots add up to.
    std::atomic<std::uint64_t> accepts;
    std::atomic<std::uint32_t> loops;
};

static_assert(std::is_standard_layout_v<WorkerSlot> && std::is_standard_layout_v<SharedTotals>);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);
static_assert(std::atomic<pid_t>::is_always_lock_free);

struct WorkerSnapshot {
    std::size_t slot = 0;
    pid_t pid = 0;
    WorkerState state = WorkerState::free;
    double age_s = 0;
    std::uint64_t requests = 0;
    std::uint32_t connections = 0;
    std::uint64_t cap_reached = 0;
    std::uint64_t accept_backoffs = 0;
    std::int64_t oldest_heartbeat_ns = 0;
    std::uint32_t in_flight = 0; // requests its threads are serving right now
};

class Scoreboard final {
public:
    // Maps the region; call before fork(). Throws std::system_error.
    explicit Scoreboard(pid_t master_pid);

    // Master: a free slot, reset to booting with fresh heartbeats; nullopt when all are taken.
    // claim() and release() also keep totals().loops, the threads of every claimed slot.
    std::optional<std::size_t> claim(std::uint32_t threads);
    void release(std::size_t slot) noexcept;

    WorkerSlot& slot(std::size_t index) noexcept;
    SharedTotals& totals() noexcept;
    std::vector<WorkerSnapshot> snapshot() const;
    // The oldest heartbeat among the slot's threads: a worker is alive only if all its threads are.
    std::int64_t oldest_heartbeat_ns(std::size_t index) const noexcept;

    static std::int64_t now_ns() noexcept;

private:
    struct Region;
    Region* region() const noexcept;
    MemoryRegion mapping_;
};

} // namespace forklock
