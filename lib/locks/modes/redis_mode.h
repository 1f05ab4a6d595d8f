#pragma once
// redis: Redis lease locks (SET NX PX, released by compare-and-delete), the lock people use with
// Redis (redis-py's Lock, Redlock on one node). Shared across threads, processes and machines:
// everything talking to one Redis database excludes everything else, with or without preload,
// but only for as long as a holder's lease lasts (redis_session.h has the script and the keys).
//
// Leases: options.lease_ms, or kDefaultLeaseMs when it is 0. A Redis lock must expire: Redis
// never learns that its holder died (nothing ends with a connection, unlike PostgreSQL's
// session), so a key without PX stays locked for ever after a crash. redis-py's Lock(timeout=None)
// does exactly that (SET NX with no PX: "the lock will never expire"); Redisson's watchdog renews
// a 30 s lease instead. This mode renews nothing: a holder that runs past its lease loses the key
// and a waiter takes it; still_held() says so (one GET) and unlock() returns false.
//
// Connections: one per (table, thread), opened on that thread's first lock and never inherited
// (a forked child abandons its copy), reconnected on the next call after a failure. A lock is not
// tied to its connection: it belongs to its value ("host=H pid=P grant=N", N unique in the
// process and never 0, the Lease the KeyGuard keeps), so a reconnect keeps held keys.
//
// Tokens: each grant INCRs the key's fencing counter in the same script as its SET, so tokens
// grow in grant order for that key; take() returns the grant's token as Taken::fence.
//
// Waiting: Redis has no queue; a waiter retries the SET with a backoff from 1 ms doubling to
// kMaxBackoffMs (jittered, so waiters do not retry in step), never past its deadline. No
// fairness: whoever retries first after the DEL or the expiry wins.
//
// Holder death: Redis frees the key when its lease expires (nothing frees it sooner). The slots
// here only carry statistics and owner_pid: the next holder or release_owned_by() clears a dead
// holder's owner word and counts the recovery.
//
// Errors: a Redis that cannot be reached, refuses or times out (RedisSession::kTimeoutMs) makes
// lock(), try_lock() and lock_for() throw LockServerError (HTTP 503). A Redis that comes back is
// reconnected on the next call; if it lost its data (no persistence), held keys are gone and
// the fencing counters restart: see docs/redis.md.
//
// Who holds what: server_locks() SCANs the lock keys (with PTTL: the lease left, and the
// fencing counter: the holder's token) on the calling thread's connection.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "locks/modes/mode.h"
#include "locks/primitives/redis_session.h"

namespace forklock {

class RedisMode final : public ModeBase {
public:
    using Handle = Lease; // Lease::session is the grant number
    static constexpr std::int64_t kDefaultLeaseMs = 30'000;
    static constexpr std::int64_t kMaxBackoffMs = 16;

    // Early: the SET before_pin() tried. A lock nobody took over (pin() threw: the table is
    // full) is let go by the destructor, or it would block the key until its lease ended.
    class Early {
    public:
        Early(const RedisMode* mode, std::string_view key, std::uint64_t grant, std::uint64_t fence)
            : mode_(mode), key_(key), grant_(grant), fence_(fence)
        {
        }
        Early(Early&& o) noexcept
            : mode_(o.mode_), key_(std::move(o.key_)), grant_(std::exchange(o.grant_, 0)),
              fence_(o.fence_)
        {
        }
        Early& operator=(Early&&) = delete;
        ~Early()
        {
            if (grant_) mode_->unlock_key(key_, grant_);
        }
        const std::string& key() const noexcept { return key_; }
        bool locked() const noexcept { return grant_ != 0; }
        std::uint64_t fence() const noexcept { return fence_; }
        Lease take() noexcept { return Lease{std::exchange(grant_, 0)}; }

    private:
        const RedisMode* mode_;
        std::string key_;
        std::uint64_t grant_; // 0 when not held
        std::uint64_t fence_;
    };

    explicit RedisMode(const ModeParts& parts)
        : ModeBase(parts),
          lease_ms_(parts.options.lease_ms > 0 ? parts.options.lease_ms : kDefaultLeaseMs)
    {
    }
    ~RedisMode(); // ends the calling thread's connection of this table
    RedisMode(const RedisMode&) = delete;
    RedisMode& operator=(const RedisMode&) = delete;

    // validate: a URL that parses (else LockServerError naming what is wrong), a lease that is
    // not negative, and a Redis that answers PING. The connection is closed again.
    static void validate(const LockTableOptions& o);

    Early before_pin(std::string_view key)
    {
        const std::uint64_t grant = next_grant();
        const std::uint64_t fence = try_take(key, grant);
        return Early(this, key, fence ? grant : 0, fence);
    }
    Taken<Handle> take(Slot& s, std::uint32_t, Deadline deadline, Early&& early)
    {
        Taken<Handle> t;
        if (early.locked()) {
            t.fence = early.fence();
            t.handle = early.take();
        } else if (!expired(deadline)) { // try_lock: before_pin's try was the one
            blocking(s, t, [&] { wait_for(early.key(), deadline, t); });
        }
        if (t.handle.session != 0) own(s, t);
        return t;
    }
    void unlock(Slot& s, Lease&& lease) noexcept { unlock_slot(s, s.key_view(), lease); }
    bool release(Slot& s, Lease&& lease) noexcept
    {
        const std::string key(s.key_view()); // copied: the unpinned slot may be rebound
        const bool held = unlock_slot(s, key, lease);
        unpin(s);
        return held;
    }

    // still_held: one GET: the key's value is still this grant's (its lease has not expired).
    bool still_held(Lease lease) const noexcept;
    std::vector<ServerLock> server_locks(std::chrono::milliseconds timeout) const;

private:
    RedisSession& session() const;
    std::string value(std::uint64_t grant) const;
    // try_take: one try; the token when taken (the grant is then recorded as this thread's).
    std::uint64_t try_take(std::string_view key, std::uint64_t grant) const;
    void wait_for(std::string_view key, Deadline deadline, Taken<Handle>& t) const;
    // unlock_key: the compare-and-delete; false when the grant's lease had expired. Forgets it.
    bool unlock_key(std::string_view key, std::uint64_t grant) const noexcept;
    bool unlock_slot(Slot& s, std::string_view key, Lease lease) noexcept
    {
        const bool held = unlock_key(key, lease.session);
        // Only our own owner word: a holder whose lease expired leaves another process's
        // successor alone. Cleared even when the lease had expired: left behind, it would make
        // release_owned_by() return our reference a second time once this process died. (A
        // successor in this same process loses its owner word here: /locks shows the key
        // without an owner until it lets go.)
        pid_t me = current_pid();
        s.owner_pid.compare_exchange_strong(me, 0, std::memory_order_acq_rel);
        return held;
    }
    void own(Slot& s, Taken<Handle>& t) noexcept;
    static std::uint64_t next_grant() noexcept;
    static std::uint64_t next_serial() noexcept;

    const std::int64_t lease_ms_;
    const std::uint64_t serial_ = next_serial(); // this table's connections, in every thread
};

} // namespace forklock
