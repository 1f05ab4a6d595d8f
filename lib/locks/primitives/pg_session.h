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
// - Sessions are numbered (session_id(), from one counter for the process, never 0 or reused): a
//   lock belongs to the session that took it, so unlock() of a lock taken by an earlier
//   connection says it was lost and leaves the new connection's locks alone.
// - Connecting: application_name is "forklock host=HOST pid=PID" (pg_stat_activity tells who
//   holds what; it overrides one in the URL) and connect_timeout defaults to kConnectTimeoutS
//   (a URL may set its own), so a server that does not answer cannot hang a request for ever.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <forklock/lock_errors.h>
#include <forklock/lock_stats.h>

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace forklock {

class PgSession final {
public:
    static constexpr int kConnectTimeoutS = 5;

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
    // next_token: the key's next fencing token, one round trip: forklock_keys.fence of `id` plus
    // one (at least `floor`), written and returned by one UPDATE (committed before it answers),
    // called by the holder of id's advisory lock, so every session and server on this database
    // continues one sequence.
    std::uint64_t next_token(std::int64_t id, std::uint64_t floor);
    // unlock: pg_advisory_unlock(id) of a lock taken by connection `session` (session_id() when
    // it was taken). False, touching nothing, if that connection is gone (it was lost, and its
    // locks with it: a newer connection's are left alone); false too, and the session closed
    // (which releases whatever it held), when the server did not have it held by this session.
    bool unlock(std::int64_t id, std::uint64_t session) noexcept;

    // alive: whether the connection is still up, without a round trip: a poll() that does not
    // wait, then a read of whatever the server sent (a terminated backend sends FATAL and closes).
    // A lost connection is closed here (so the next call reconnects). False when not connected.
    bool alive() noexcept;
    // session_id: the number of the current connection, 0 when not connected.
    [[nodiscard]] std::uint64_t session_id() const noexcept { return conn_ ? session_id_ : 0; }

    // server_locks: the advisory locks of forklock_keys' ids in this database, granted or
    // waited for, by every session (LockTable::server_locks). The answer must come within
    // `timeout` (a statement_timeout on the server and a deadline here); else the session is
    // closed and LockServerError thrown.
    std::vector<ServerLock> server_locks(std::chrono::milliseconds timeout);

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
    struct ResultDeleter {
        void operator()(pg_result* r) const noexcept;
    };
    using Result = std::unique_ptr<pg_result, ResultDeleter>;
    Result run_within(const std::string& sql, std::chrono::milliseconds timeout);

    std::string url_;
    PGconn* conn_ = nullptr;
    std::uint64_t session_id_ = 0;
    bool fatal_ = false; // the server sent FATAL or PANIC: the connection is ending
    std::unordered_map<std::string, std::int64_t> ids_;
};

} // namespace forklock
