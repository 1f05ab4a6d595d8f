#pragma once
// Scoreboard: the master's view of its workers, in one anonymous MAP_SHARED region created
// before fork (unicorn and nginx keep liveness in shared memory, not in files: a disk-backed
// heartbeat stalls under I/O load, as gunicorn's temporary-file heartbeat does).
//
// Shared across processes and threads: every field is a lock-free std::atomic, written by one
// party (the master claims and frees slots; a worker fills its own slot, each thread its own
// heartbeat). Readers get a snapshot that may mix instants, which is fine for monitoring.
// Two exceptions are written whole: a ServerConfig is one 64-bit word (one load, one CAS), and
// the master's ring of worker deaths is read under a sequence lock (a reader retries a torn one).

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "app/step_board.h"
#include <forklock/lock_mode.h>
#include "os/memory_region.h"

namespace forklock {

inline constexpr std::size_t kMaxWorkers = 256;
inline constexpr std::size_t kMaxThreads = 64;

enum class WorkerState : std::uint32_t { free, booting, idle, busy, stopping };
const char* to_string(WorkerState state) noexcept;

// A server configuration: what /control/config asks for, what the master applies, what a worker
// booted with. `generation` counts the requests: 0 is the command line's.
struct ServerConfig {
    std::uint32_t generation = 0;
    LockMode mode = kProcessMode;
    bool preload = false;
    int workers = 1; // 1..kMaxWorkers
    int threads = 1; // 1..kMaxThreads

    std::uint64_t pack() const noexcept;
    static ServerConfig unpack(std::uint64_t word) noexcept;
    bool operator==(const ServerConfig&) const = default;
};

// A change /control/config asks for: the fields left empty keep the latest requested value.
struct ConfigChange {
    std::optional<LockMode> mode;
    std::optional<bool> preload;
    std::optional<int> workers;
    std::optional<int> threads;
};

struct WorkerSlot {
    std::atomic<pid_t> pid;             // 0 until the master has forked it
    std::atomic<std::uint32_t> state;   // WorkerState; busy is derived from busy_threads
    std::atomic<std::uint32_t> threads; // heartbeats that count
    std::atomic<std::uint32_t> busy_threads;
    std::atomic<std::int64_t> born_ns; // steady clock (CLOCK_MONOTONIC: one clock per host)
    std::atomic<std::uint64_t> requests;
    std::atomic<std::uint64_t> config; // ServerConfig::pack() of what it booted with; 0 = not yet
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

// A worker the master reaped. `held`: the keys it held then, from the master's lock table (empty
// when the master has none: without --preload); `released`: the keys release_owned_by() freed.
struct WorkerDeath {
    pid_t pid = 0;
    std::int64_t died_ns = 0; // CLOCK_MONOTONIC, the trace's clock
    int signal = 0;           // 0 if it exited
    int status = 0;           // the exit code, or the wait status when it was signalled
    std::vector<std::string> held;
    std::size_t released = 0;
};

inline constexpr std::size_t kDeathRing = 32; // deaths kept
inline constexpr std::size_t kDeathKeys = 8;  // held keys kept per death
inline constexpr std::size_t kDeathKeyLength = 128;
inline constexpr std::size_t kConfigRefusalLength = 512; // bytes of a refusal's reason kept

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
    std::uint32_t in_flight = 0;        // requests its threads are serving right now
    std::optional<ServerConfig> config; // what it booted with; nullopt while booting
};

// The calling worker thread's heartbeat word, set by its event loop: a request that blocks on
// purpose for long (parked at a step gate) beats it, so the master does not take it for hung.
// Thread-local; a thread that never set one beats nothing.
void set_thread_heartbeat(std::atomic<std::int64_t>* word) noexcept;
void beat_thread_heartbeat() noexcept;

class Scoreboard final {
public:
    // Maps the region, with `config` applied; call before fork(). Throws std::system_error.
    explicit Scoreboard(pid_t master_pid, const ServerConfig& config = {});

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

    // The configuration the master runs (written by the master only).
    ServerConfig applied_config() const noexcept;
    void publish_config(const ServerConfig& config) noexcept;
    // The latest one asked for: applied_config() until a request_config(). request_config() merges
    // `change` into it with a generation one above both (any process; lock-free) and returns it.
    ServerConfig requested_config() const noexcept;
    ServerConfig request_config(const ConfigChange& change) noexcept;
    // The master's last refusal (a reload that failed its checks; the old workers kept serving):
    // refuse_config() by the master only, before it publishes the generation as consumed;
    // config_refusal() from anywhere: the reason if `generation` is the one last refused.
    void refuse_config(std::uint32_t generation, std::string_view reason) noexcept;
    std::optional<std::string> config_refusal(std::uint32_t generation) const;

    // The master's ring of the last kDeathRing worker deaths: record_death() by the master only
    // (keys past kDeathKeys are dropped, bytes past kDeathKeyLength cut); deaths() from anywhere,
    // oldest first.
    void record_death(const WorkerDeath& death) noexcept;
    std::vector<WorkerDeath> deaths() const;

    // The gates of step mode (step_board.h), in this region: shared by every worker.
    StepBoard steps() noexcept;

private:
    struct Region;
    Region* region() const noexcept;
    MemoryRegion mapping_;
};

} // namespace forklock
