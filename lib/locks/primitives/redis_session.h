#pragma once
// RedisSession: one hiredis connection that takes Redis lease locks for exact keys. The redis
// lock mode keeps one per (table, thread); this class knows nothing of slots.
//
// The keys in Redis, per forklock key K (binary-safe, 1..128 bytes):
// - forklock:{K}:lock   the lock: its value names the holder ("host=H pid=P grant=N"), its PX
//                       the lease. Absent when the key is free.
// - forklock:{K}:fence  the fencing counter: INCR'd once per grant, never deleted, so a key's
//                       tokens only grow (across holders, processes, servers and restarts of
//                       a Redis that keeps its data).
// ({K} is a hash tag: both keys of K live on one Redis Cluster node, as a script needs.)
//
// Taking: one script does `SET lock value NX PX lease` and, only if that set it, `INCR fence`.
// One script, not two commands: with two, a holder whose lease expired between its SET and its
// INCR would get a token above the next holder's. Letting go: a compare-and-delete script (GET
// equals our value, then DEL), so a holder whose lease expired never deletes its successor's
// lock. Both scripts are loaded once per connection (SCRIPT LOAD) and run by EVALSHA; a Redis
// that lost them (SCRIPT FLUSH, a restart) is sent the script again with EVAL.
//
// Contract:
// - Shared across processes, threads and machines: everything that talks to one Redis database
//   excludes everything else, for as long as the lease lasts. Not reentrant (a second lock of a
//   held key by the same thread waits for the lease to end).
// - Not thread-safe: one session per thread. Not to be used across fork(): a child calls
//   abandon() (closes its copy of the socket without a word) and opens its own.
// - Holder death: nothing is told to Redis; the lock frees itself when its lease (PX) expires.
//   Redis's expiry runs on Redis's wall clock, not the holder's: see docs/redis.md.
// - Errors: a refused, lost or timed-out connection (kTimeoutMs for connect and each reply) or
//   an error reply throws LockServerError and closes the session; the next call reconnects. A
//   lock taken by an earlier connection is still ours: a Redis lock belongs to its value, not
//   to the connection that set it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <forklock/lock_errors.h>

struct redisContext;
struct redisReply;

namespace forklock {

// RedisAddress: where a Redis is, from --lock-url.
struct RedisAddress {
    std::string host; // TCP: a host name or address; empty for a Unix socket
    int port = 6379;
    std::string socket; // Unix socket path; empty for TCP
    int db = 0;         // SELECTed after connecting
};

// parse_redis_url: redis://HOST[:PORT][/DB], redis://[IPV6][:PORT][/DB], unix:///PATH[?db=N]
// or /PATH. Throws std::invalid_argument saying what is wrong (no password: AUTH is not
// supported; reach a Redis of your own on a Unix socket or loopback).
RedisAddress parse_redis_url(std::string_view url);

// One holder as Redis sees it (RedisSession::holders).
struct RedisHolder {
    std::string key;
    std::string value;       // "host=H pid=P grant=N"
    std::int64_t ttl_ms = 0; // what is left of the lease (PTTL)
    std::uint64_t fence = 0; // the key's fencing counter: the holder's token
};

class RedisSession final {
public:
    static constexpr int kTimeoutMs = 2000;

    // Connects lazily, on the first call that needs it.
    explicit RedisSession(RedisAddress address) : address_(std::move(address)) {}
    ~RedisSession();
    RedisSession(const RedisSession&) = delete;
    RedisSession& operator=(const RedisSession&) = delete;

    // ping: connects (if not connected) and asks PING. Throws LockServerError.
    void ping();
    // try_lock: the script above. The key's new fencing token when taken, 0 when held by another.
    [[nodiscard]] std::uint64_t try_lock(std::string_view key, std::string_view value,
                                         std::int64_t lease_ms);
    // unlock: the compare-and-delete script. False when the lock is not `value`'s any more (its
    // lease expired, and maybe another holder took it, whose lock is left alone).
    bool unlock(std::string_view key, std::string_view value);
    // holds: GET compares the value: whether `value` still holds the key.
    [[nodiscard]] bool holds(std::string_view key, std::string_view value);
    // holders: every forklock lock in this database, by SCAN (not KEYS: Redis serves others
    // meanwhile), with its value, remaining lease and fencing counter.
    std::vector<RedisHolder> holders();

    // abandon: forget an inherited connection without talking to Redis. close: end it.
    void abandon() noexcept;
    void close() noexcept;
    [[nodiscard]] bool connected() const noexcept { return ctx_ != nullptr; }

    static std::string lock_key(std::string_view key);
    static std::string fence_key(std::string_view key);

private:
    struct ReplyDeleter {
        void operator()(redisReply* r) const noexcept;
    };
    using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

    redisContext* connection();
    void load_scripts();
    Reply run(const std::vector<std::string_view>& argv);
    // run_script: EVALSHA sha NUMKEYS KEYS... ARGS..., and EVAL of `script` if Redis lost it.
    Reply run_script(const std::string& sha, const char* script,
                     const std::vector<std::string_view>& numkeys_keys_args);
    [[noreturn]] void fail(std::string_view what);

    RedisAddress address_;
    redisContext* ctx_ = nullptr;
    std::string lock_sha_;
    std::string unlock_sha_;
};

} // namespace forklock
