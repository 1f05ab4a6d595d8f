#include "app/scoreboard.h"
#include "app/shared_text.h"

#include <algorithm>
#include <chrono>
#include <new>
#include <string_view>

namespace forklock {
// The shared region's layout. A named namespace, not an anonymous one: Scoreboard::Region, which
// has external linkage, holds these types.
namespace scoreboard_layout {

// One death in shared memory. Keys are stored as 64-bit atomic words so a reader racing the
// master's write reads torn words, never undefined behaviour, and the sequence number tells it to
// retry.
struct DeathSlot {
    std::atomic<std::uint64_t> seq; // odd while the master writes this slot
    std::atomic<pid_t> pid;
    std::atomic<std::int64_t> died_ns;
    std::atomic<std::int32_t> signal;
    std::atomic<std::int32_t> status;
    std::atomic<std::uint64_t> released;
    std::atomic<std::uint32_t> held_count;
    std::array<std::atomic<std::uint32_t>, kDeathKeys> key_length;
    std::array<std::array<std::atomic<std::uint64_t>, kDeathKeyLength / 8>, kDeathKeys> keys;
};

struct DeathRing {
    std::atomic<std::uint64_t> recorded; // deaths ever recorded; the next goes to recorded % size
    std::array<DeathSlot, kDeathRing> slots;
};

// The master's last refusal of a requested configuration, under a sequence lock as a death.
struct ConfigRefusal {
    std::atomic<std::uint64_t> seq; // odd while the master writes it
    std::atomic<std::uint32_t> generation;
    std::atomic<std::uint32_t> length;
    std::array<std::atomic<std::uint64_t>, kConfigRefusalLength / 8> reason;
};

struct SharedConfig {
    std::atomic<std::uint64_t> applied;
    std::atomic<std::uint64_t> requested;
    ConfigRefusal refusal;
};

static_assert(std::is_standard_layout_v<DeathRing> && std::is_standard_layout_v<SharedConfig>);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

} // namespace scoreboard_layout
using namespace scoreboard_layout;

namespace {

void store_key(DeathSlot& d, std::size_t i, const std::string& key) noexcept
{
    store_text(d.keys[i], d.key_length[i], key);
}

std::string load_key(const DeathSlot& d, std::size_t i)
{
    return load_text(d.keys[i], d.key_length[i]);
}

// One consistent read of a slot, or nullopt if the master was writing it.
std::optional<WorkerDeath> read_death(const DeathSlot& d)
{
    const std::uint64_t before = d.seq.load(std::memory_order_acquire);
    if (before % 2 == 1 || before == 0) return std::nullopt;
    WorkerDeath out;
    out.pid = d.pid.load(std::memory_order_relaxed);
    out.died_ns = d.died_ns.load(std::memory_order_relaxed);
    out.signal = d.signal.load(std::memory_order_relaxed);
    out.status = d.status.load(std::memory_order_relaxed);
    out.released = d.released.load(std::memory_order_relaxed);
    const auto held =
        std::min<std::size_t>(d.held_count.load(std::memory_order_relaxed), kDeathKeys);
    for (std::size_t i = 0; i < held; ++i) out.held.push_back(load_key(d, i));
    std::atomic_thread_fence(std::memory_order_acquire);
    if (d.seq.load(std::memory_order_relaxed) != before) return std::nullopt;
    return out;
}

} // namespace

struct Scoreboard::Region {
    SharedTotals totals;
    std::array<WorkerSlot, kMaxWorkers> slots;
    SharedConfig config;
    DeathRing deaths;
    StepBoardState steps;
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

Scoreboard::Scoreboard(pid_t master_pid, const ServerConfig& config)
    : mapping_(sizeof(Region), MemoryRegion::Sharing::shared)
{
    auto* r = new (mapping_.data()) Region{};
    r->totals.master_pid = master_pid;
    r->config.applied = config.pack();
    r->config.requested = config.pack();
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
        s.config = 0;
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

StepBoard Scoreboard::steps() noexcept { return StepBoard(region()->steps); }

namespace {
thread_local std::atomic<std::int64_t>* t_heartbeat = nullptr;
}

void set_thread_heartbeat(std::atomic<std::int64_t>* word) noexcept { t_heartbeat = word; }

void beat_thread_heartbeat() noexcept
{
    if (t_heartbeat) t_heartbeat->store(Scoreboard::now_ns(), std::memory_order_relaxed);
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
        WorkerSnapshot w;
        w.slot = i;
        w.pid = pid;
        w.state = state;
        w.age_s = static_cast<double>(now - s.born_ns.load()) / 1e9;
        w.requests = s.requests.load();
        w.connections = s.connections.load();
        w.cap_reached = s.cap_reached.load();
        w.accept_backoffs = s.accept_backoffs.load();
        w.oldest_heartbeat_ns = oldest_heartbeat_ns(i);
        w.in_flight = in_flight;
        if (const std::uint64_t config = s.config.load()) w.config = ServerConfig::unpack(config);
        out.push_back(w);
    }
    return out;
}

// Bits, high to low: generation 32, workers 16, threads 8, spare 3, preload 1, mode 4. The mode
// is stored plus one, so a booted worker's word is never 0.
std::uint64_t ServerConfig::pack() const noexcept
{
    return std::uint64_t{generation} << 32 | std::uint64_t(workers & 0xffff) << 16 |
           std::uint64_t(threads & 0xff) << 8 | std::uint64_t{preload} << 4 |
           (static_cast<std::uint64_t>(mode) + 1);
}

ServerConfig ServerConfig::unpack(std::uint64_t w) noexcept
{
    ServerConfig c;
    if (w == 0) return c;
    c.generation = static_cast<std::uint32_t>(w >> 32);
    c.workers = static_cast<int>((w >> 16) & 0xffff);
    c.threads = static_cast<int>((w >> 8) & 0xff);
    c.preload = (w >> 4) & 1;
    c.mode = static_cast<LockMode>((w & 0xf) - 1);
    return c;
}

ServerConfig Scoreboard::applied_config() const noexcept
{
    return ServerConfig::unpack(region()->config.applied.load());
}

// The master publishes every change of its own (TTIN, TTOU, an applied request); while no request
// is pending the requested word follows, so the next request starts from what runs.
void Scoreboard::publish_config(const ServerConfig& config) noexcept
{
    auto& c = region()->config;
    const std::uint64_t old_applied = c.applied.exchange(config.pack());
    std::uint64_t requested = c.requested.load();
    while (ServerConfig::unpack(requested).generation <=
               ServerConfig::unpack(old_applied).generation &&
           !c.requested.compare_exchange_weak(requested, config.pack())) {}
}

ServerConfig Scoreboard::requested_config() const noexcept
{
    return ServerConfig::unpack(region()->config.requested.load());
}

ServerConfig Scoreboard::request_config(const ConfigChange& change) noexcept
{
    auto& c = region()->config;
    std::uint64_t word = c.requested.load();
    ServerConfig next;
    do {
        const ServerConfig base = ServerConfig::unpack(word);
        next = base;
        next.generation = std::max(base.generation, applied_config().generation) + 1;
        next.mode = change.mode.value_or(base.mode);
        next.preload = change.preload.value_or(base.preload);
        next.workers = change.workers.value_or(base.workers);
        next.threads = change.threads.value_or(base.threads);
    } while (!c.requested.compare_exchange_weak(word, next.pack()));
    return next;
}

void Scoreboard::refuse_config(std::uint32_t generation, std::string_view reason) noexcept
{
    auto& r = region()->config.refusal;
    const std::uint64_t seq = r.seq.load(std::memory_order_relaxed);
    r.seq.store(seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    r.generation.store(generation, std::memory_order_relaxed);
    store_text(r.reason, r.length, reason);
    r.seq.store(seq + 2, std::memory_order_release);
}

std::optional<std::string> Scoreboard::config_refusal(std::uint32_t generation) const
{
    const auto& r = region()->config.refusal;
    for (int attempt = 0; attempt < 100; ++attempt) {
        const std::uint64_t before = r.seq.load(std::memory_order_acquire);
        if (before % 2 == 1) continue;
        const bool ours = r.generation.load(std::memory_order_relaxed) == generation;
        std::string reason = load_text(r.reason, r.length);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (r.seq.load(std::memory_order_relaxed) != before) continue;
        if (before == 0 || !ours) return std::nullopt;
        return reason;
    }
    return std::nullopt;
}

void Scoreboard::record_death(const WorkerDeath& death) noexcept
{
    auto& ring = region()->deaths;
    const std::uint64_t n = ring.recorded.load(std::memory_order_relaxed);
    DeathSlot& d = ring.slots[n % kDeathRing];
    const std::uint64_t seq = d.seq.load(std::memory_order_relaxed);
    d.seq.store(seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    d.pid.store(death.pid, std::memory_order_relaxed);
    d.died_ns.store(death.died_ns, std::memory_order_relaxed);
    d.signal.store(death.signal, std::memory_order_relaxed);
    d.status.store(death.status, std::memory_order_relaxed);
    d.released.store(death.released, std::memory_order_relaxed);
    const std::size_t held = std::min(death.held.size(), kDeathKeys);
    for (std::size_t i = 0; i < held; ++i) store_key(d, i, death.held[i]);
    d.held_count.store(static_cast<std::uint32_t>(held), std::memory_order_relaxed);
    d.seq.store(seq + 2, std::memory_order_release);
    ring.recorded.store(n + 1, std::memory_order_release);
}

std::vector<WorkerDeath> Scoreboard::deaths() const
{
    const auto& ring = region()->deaths;
    const std::uint64_t n = ring.recorded.load(std::memory_order_acquire);
    std::vector<WorkerDeath> out;
    for (std::uint64_t i = n > kDeathRing ? n - kDeathRing : 0; i < n; ++i) {
        const DeathSlot& d = ring.slots[i % kDeathRing];
        for (int attempt = 0; attempt < 100; ++attempt) {
            if (auto death = read_death(d)) {
                out.push_back(std::move(*death));
                break;
            }
        }
    }
    return out;
}

} // namespace forklock
