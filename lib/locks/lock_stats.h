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

} // namespace forklock
