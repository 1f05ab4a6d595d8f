#include "locks/modes/redis_mode.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

namespace forklock {
namespace {

// ThreadRedis: the calling thread's connection of one table, and the grants it holds (by grant
// number: the key), which still_held() needs and a Lease alone does not carry.
struct ThreadRedis {
    pid_t pid = 0;
    std::unique_ptr<RedisSession> session;
    std::unordered_map<std::uint64_t, std::string> grants;
};
// By table serial: two tables in one thread are two connections, as two processes would be.
thread_local std::unordered_map<std::uint64_t, ThreadRedis> t_redis;
std::atomic<std::uint64_t> g_next_serial{1};
std::atomic<std::uint64_t> g_next_grant{1};

const std::string& host_name()
{
    static const std::string name = [] {
        char buf[256] = {};
        if (::gethostname(buf, sizeof buf - 1) != 0) return std::string("?");
        return std::string(buf);
    }();
    return name;
}

// field: NAME's value in "host=H pid=P grant=N" ("" when absent).
std::string_view field(std::string_view value, std::string_view name)
{
    for (std::size_t at = 0; at < value.size();) {
        const std::size_t end = std::min(value.find(' ', at), value.size());
        const std::string_view part = value.substr(at, end - at);
        if (part.size() > name.size() && part.starts_with(name) && part[name.size()] == '=')
            return part.substr(name.size() + 1);
        at = end + 1;
    }
    return {};
}

// ThreadRedis of `serial` for this thread; one inherited across fork is dropped (not ours).
ThreadRedis& thread_redis(std::uint64_t serial)
{
    ThreadRedis& tr = t_redis[serial];
    if (tr.pid != current_pid()) {
        if (tr.session) tr.session->abandon();
        tr = ThreadRedis{current_pid(), nullptr, {}};
    }
    return tr;
}

} // namespace

std::uint64_t RedisMode::next_serial() noexcept
{
    return g_next_serial.fetch_add(1, std::memory_order_relaxed);
}
std::uint64_t RedisMode::next_grant() noexcept
{
    return g_next_grant.fetch_add(1, std::memory_order_relaxed);
}

RedisMode::~RedisMode() { t_redis.erase(serial_); }

void RedisMode::validate(const LockTableOptions& o)
{
    if (o.url.empty()) throw std::invalid_argument("redis mode needs a url");
    if (o.lease_ms < 0)
        throw std::invalid_argument(
            fmt::format("redis mode: a lease is > 0 ms, not {}", o.lease_ms));
    RedisAddress address;
    try {
        address = parse_redis_url(o.url);
    } catch (const std::invalid_argument& e) {
        throw LockServerError(e.what()); // the server's start says --lock-url and exits 2
    }
    RedisSession(std::move(address)).ping();
}

RedisSession& RedisMode::session() const
{
    ThreadRedis& tr = thread_redis(serial_);
    if (!tr.session)
        tr.session = std::make_unique<RedisSession>(parse_redis_url(parts_.options.url));
    return *tr.session;
}

std::string RedisMode::value(std::uint64_t grant) const
{
    return fmt::format("host={} pid={} grant={}", host_name(), current_pid(), grant);
}

std::uint64_t RedisMode::try_take(std::string_view key, std::uint64_t grant) const
{
    const std::uint64_t fence = session().try_lock(key, value(grant), lease_ms_);
    if (fence != 0) thread_redis(serial_).grants.emplace(grant, key);
    return fence;
}

void RedisMode::wait_for(std::string_view key, Deadline deadline, Taken<Handle>& t) const
{
    thread_local std::minstd_rand jitter(static_cast<unsigned>(current_pid()));
    std::int64_t backoff_us = 1000;
    for (;;) {
        std::int64_t sleep_ns =
            backoff_us * 1000 / 2 + static_cast<std::int64_t>(jitter() % 1000) * backoff_us / 2;
        if (deadline) sleep_ns = std::min(sleep_ns, *deadline - monotonic_ns());
        if (sleep_ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(sleep_ns));
        const std::uint64_t grant = next_grant();
        if (const std::uint64_t fence = try_take(key, grant); fence != 0) {
            t.handle = Lease{grant};
            t.fence = fence;
            return;
        }
        if (expired(deadline)) return;
        backoff_us = std::min(backoff_us * 2, kMaxBackoffMs * 1000);
    }
}

bool RedisMode::unlock_key(std::string_view key, std::uint64_t grant) const noexcept
{
    try {
        thread_redis(serial_).grants.erase(grant);
        if (session().unlock(key, value(grant))) return true;
        std::fprintf(stderr, "forklock: unlock of '%.*s': its redis lease had expired\n",
                     static_cast<int>(key.size()), key.data());
        return false;
    } catch (const std::exception& e) { // Redis down: the lease ends by itself
        std::fprintf(stderr, "forklock: unlock: %s\n", e.what());
        return false;
    }
}

bool RedisMode::still_held(Lease lease) const noexcept
{
    try {
        ThreadRedis& tr = thread_redis(serial_);
        const auto it = tr.grants.find(lease.session);
        return it != tr.grants.end() && session().holds(it->second, value(lease.session));
    } catch (const std::exception&) {
        return false; // cannot tell: a holder about to write must not
    }
}

// own: the Redis lock is ours; so is the key. An owner word still set names the holder before
// us: dead (its lease expired; nobody returned its reference), that recovery is ours; alive
// (its lease expired while it ran), it returns its own reference when it lets go.
void RedisMode::own(Slot& s, Taken<Handle>& t) noexcept
{
    t.ok = true;
    const pid_t previous = s.owner_pid.exchange(current_pid(), std::memory_order_acq_rel);
    if (previous != 0 && previous != current_pid() && ::kill(previous, 0) != 0 && errno == ESRCH) {
        t.recovered_from = previous;
        count_recovery(s, previous);
        unpin(s);
    }
}

std::vector<ServerLock> RedisMode::server_locks(std::chrono::milliseconds) const
{
    std::vector<ServerLock> out;
    for (RedisHolder& h : session().holders()) {
        ServerLock l;
        l.key = std::move(h.key);
        l.granted = true;
        l.host = std::string(field(h.value, "host"));
        const std::string_view pid = field(h.value, "pid");
        std::from_chars(pid.data(), pid.data() + pid.size(), l.pid);
        l.application_name = std::move(h.value);
        l.ttl_ms = h.ttl_ms;
        l.token = h.fence;
        l.for_ms = static_cast<double>(std::max<std::int64_t>(lease_ms_ - h.ttl_ms, 0));
        out.push_back(std::move(l));
    }
    return out;
}

} // namespace forklock
