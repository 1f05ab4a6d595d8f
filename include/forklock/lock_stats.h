#pragma once
// Plain snapshots of a lock table's statistics: copied out of (shared) memory, safe to keep.

#include <cstdint>
#include <string>
#include <sys/types.h>

namespace forklock {

struct KeyStats {
    std::string key;
    pid_t owner_pid = 0; // 0 when free; the pid that holds it (a dead one until recovered)
    std::uint32_t waiters =
        0; // processes/threads blocked on it right now (dead ones forgotten by release_owned_by)
    std::uint64_t acquisitions = 0;
    std::uint64_t contended = 0; // acquisitions that had to wait
    std::uint64_t wait_ns_total = 0;
    std::uint64_t wait_ns_max = 0;
    std::uint64_t recoveries = 0; // times a dead holder's lock was taken back
    pid_t last_dead_owner = 0;    // the pid of the last holder recovered from
    std::uint64_t last_token = 0; // the fencing token of its last grant (KeyGuard::token()), or 0
    std::int64_t lease_left_ms = -1;   // a leased holder's time left (0: expired), -1 without one
    std::uint64_t lease_takeovers = 0; // grants that took the key from a holder past its lease
};

struct TableStats {
    std::size_t capacity = 0; // slots: keys that can be held at once
    std::size_t keys = 0; // "keys in use": slots bound to a key (idle ones are reused on demand)
    std::size_t keys_high_water = 0; // most keys ever bound at once
    std::size_t active = 0;          // keys held or waited on right now (capacity bounds this one)
    std::uint64_t evictions = 0;     // idle keys whose slot was given to another key
    std::uint64_t full_errors = 0;   // TableFullError thrown
    std::uint64_t recoveries = 0;    // sum over keys, including evicted ones
    bool shared = false;             // lives in MAP_SHARED memory (semaphore, mutex, flock stats)
};

// ServerLock: one lock of a key as the lock server (postgres, redis mode) sees it, held or waited
// for by a session of any process on any host.
struct ServerLock {
    std::string key;
    bool granted = false;         // false: the session waits for it
    std::string host;             // the holder's host, from its application_name ("" if unknown)
    pid_t pid = 0;                // the holder's process, likewise (0: not a forklock session)
    int backend_pid = 0;          // the PostgreSQL backend of the session (pg_stat_activity.pid)
    std::string client_addr;      // the session's client address; "" on a Unix socket
    std::string application_name; // as the session set it: "forklock host=HOST pid=PID"
    // since: granted: when the session's last statement ended (its lock, unless it took another
    // key since); waiting: when it began to wait. UTC, ISO 8601, by the server's clock.
    std::string since;
    double for_ms = 0; // how long ago `since` was, by the server's clock (redis: held for, by
                       // this table's lease)
    std::int64_t ttl_ms = -1; // redis: what is left of the holder's lease (PTTL); -1: no lease
    std::uint64_t token = 0;  // redis: the key's fencing counter, the holder's token; else 0
};

} // namespace forklock
