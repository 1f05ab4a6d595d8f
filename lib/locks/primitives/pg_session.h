#pragma once
// PgSession: one libpq connection that takes PostgreSQL session-level advisory locks for exact
// keys. The postgres lock mode keeps one per (table, thread); this class knows nothing of slots.
//
// Exact keys: advisory locks are named by a bigint, and a hash of a 128-byte key into 64 bits can
// collide, which would make two keys one lock (two holders of different keys would exclude each
// other, and a thread holding both would count one lock twice). So each key gets a bigint of its
// own from the table forklock_keys(key text primary key, id bigserial), filled by
// INSERT ... ON CONFLICT DO UPDATE ... RETURNING id (one row per key, ever: the primary key makes
// the id exact; the row is never deleted, so a key's id never changes). Ids are cached per
// session. forklock's locks thus occupy the bigint advisory-lock space 1, 2, ... of the database
// in the URL: give forklock a database (or at least an advisory-lock space) of its own.
//
// Contract:
// - Shared across processes, threads and machines: everything that connects to one database
//   excludes everything else. Between two sessions only: a session's advisory locks are
//   reentrant (a second lock of a held key succeeds and needs a second unlock).
// - Not thread-safe: one session per thread. Not to be used across fork(): a child must call
//   abandon() (closes its copy of the socket, sends nothing, so the parent's session lives on) and
//   open its own.
// - Holder death: PostgreSQL releases a session's locks when its connection closes, which the
//   kernel does for a killed process at once. A host that vanishes without closing its TCP
//   connection keeps its locks until the server notices (tcp_keepalives_* on the server,
//   keepalives* in the URL); a Unix socket has no such case.
// - Errors: a lost connection, a refused one or a failed query throw LockServerError and leave
//   the session closed; the next call connects again. A timed-out wait is not an error.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "locks/lock_errors.h"

typedef struct pg_conn PGconn;

namespace forklock {

class PgSession final {
public:
    // Connects to `url` (a libpq connection string or URI) lazily, on the first call that needs it.
    explicit PgSession(std::string url) : url_(std::move(url)) {}
    ~PgSession();
    PgSession(const PgSession&) = delete;
    PgSession& operator=(const PgSession&) = delete;

    // prepare_database: connects, and creates forklock_keys if it does not exist (serialized by a
    // transaction-level advisory lock in the two-int4 space, which bigint keys never meet).
    // Throws LockServerError with libpq's message when the server or the URL is bad.
    void prepare_database();

    // key_id: the key's exact advisory-lock id, made on first use.
    std::int64_t key_id(std::string_view key);
    // try_lock: one round trip, pg_try_advisory_lock(id).
    [[nodiscard]] bool try_lock(std::int64_t id);
    // lock: pg_advisory_lock(id), waiting at most `timeout` (nullopt: for ever; zero: one try)
    // with a transaction-local lock_timeout. False when the timeout expired.
    [[nodiscard]] bool lock(std::int64_t id, std::optional<std::chrono::milliseconds> timeout);
    // unlock: pg_advisory_unlock(id). False (and the session closed, which releases whatever it
    // held) when the server did not have it held by this session or the connection is gone.
    bool unlock(std::int64_t id) noexcept;

    // abandon: forget an inherited connection without talking to the server (see above).
    void abandon() noexcept;
    // close: end the session; PostgreSQL releases its locks.
    void close() noexcept;
    [[nodiscard]] bool connected() const noexcept { return conn_ != nullptr; }
    // backend_pid: the server process of this session (pg_stat_activity.pid), or 0.
    [[nodiscard]] int backend_pid() const noexcept;

private:
    PGconn* connection();
    [[noreturn]] void fail(std::string_view what);
    bool run_bool(const char* sql, std::int64_t id, bool lock_wait);

    std::string url_;
    PGconn* conn_ = nullptr;
    std::unordered_map<std::string, std::int64_t> ids_;
};

} // namespace forklock
