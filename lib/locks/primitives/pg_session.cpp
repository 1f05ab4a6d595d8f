#include "locks/primitives/pg_session.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <libpq-fe.h>

namespace forklock {
namespace {

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

constexpr const char* kSqlState55P03 = "55P03"; // lock_not_available: lock_timeout expired
constexpr std::size_t kMaxCachedIds = 4096;

std::string message_of(PGconn* conn)
{
    // One line: libpq's messages end in a newline and may add a tab-indented hint.
    std::string m;
    for (const char* p = conn ? PQerrorMessage(conn) : "out of memory"; *p; ++p) {
        const bool space = *p == '\n' || *p == '\t';
        if (!space)
            m += *p;
        else if (!m.empty() && m.back() != ' ')
            m += ' ';
    }
    while (!m.empty() && m.back() == ' ') m.pop_back();
    return m;
}

} // namespace

PgSession::~PgSession() { close(); }

void PgSession::close() noexcept
{
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
}

void PgSession::abandon() noexcept
{
    if (conn_ && PQsocket(conn_) >= 0) ::close(PQsocket(conn_));
    conn_ = nullptr; // the PGconn is the parent's: leaked, never freed or written to
    ids_.clear();
}

int PgSession::backend_pid() const noexcept { return conn_ ? PQbackendPID(conn_) : 0; }

void PgSession::fail(std::string_view what)
{
    std::string m = fmt::format("PostgreSQL {}: {}", what, message_of(conn_));
    close();
    throw LockServerError(m);
}

PGconn* PgSession::connection()
{
    if (conn_) return conn_;
    const char* keys[] = {"application_name", "dbname", nullptr};
    const char* values[] = {"forklock", url_.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) fail("connect");
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr); // CREATE ... IF NOT EXISTS
    return conn_;
}

void PgSession::prepare_database()
{
    Result r(PQexec(connection(), "BEGIN; SELECT pg_advisory_xact_lock(1718384491, 0); "
                                  "CREATE TABLE IF NOT EXISTS forklock_keys "
                                  "(key text PRIMARY KEY, id bigserial UNIQUE NOT NULL); COMMIT"),
             &PQclear);
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) fail("CREATE TABLE forklock_keys");
}

std::int64_t PgSession::key_id(std::string_view key)
{
    const std::string k(key);
    if (auto it = ids_.find(k); it != ids_.end()) return it->second;
    const char* params[] = {k.c_str()};
    Result r(PQexecParams(connection(),
                          "INSERT INTO forklock_keys (key) VALUES ($1) ON CONFLICT (key) "
                          "DO UPDATE SET key = EXCLUDED.key RETURNING id",
                          1, nullptr, params, nullptr, nullptr, 0),
             &PQclear);
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1)
        fail("INSERT INTO forklock_keys");
    const std::int64_t id = std::stoll(PQgetvalue(r.get(), 0, 0));
    if (ids_.size() >= kMaxCachedIds) ids_.clear();
    ids_.emplace(k, id);
    return id;
}

// run_bool: `sql` (its last statement returns one boolean) for `id`. lock_wait: an expired
// lock_timeout is the answer false, not an error.
bool PgSession::run_bool(const char* sql, std::int64_t id, bool lock_wait)
{
    const std::string query = fmt::format(fmt::runtime(sql), id);
    Result r(PQexec(connection(), query.c_str()), &PQclear);
    if (PQresultStatus(r.get()) == PGRES_TUPLES_OK && PQntuples(r.get()) == 1)
        return PQgetvalue(r.get(), 0, 0)[0] == 't';
    const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    if (lock_wait && state && std::string_view(state) == kSqlState55P03 &&
        PQstatus(conn_) == CONNECTION_OK)
        return false;
    fail(fmt::format("advisory lock {}", id));
}

bool PgSession::try_lock(std::int64_t id)
{
    return run_bool("SELECT pg_try_advisory_lock({})", id, false);
}

bool PgSession::lock(std::int64_t id, std::optional<std::chrono::milliseconds> timeout)
{
    if (!timeout) return run_bool("SELECT pg_advisory_lock({}) IS NOT NULL", id, false);
    if (timeout->count() <= 0) return try_lock(id);
    // One simple query is one implicit transaction: SET LOCAL ends with it, so the next lock()
    // waits for ever again, and a timeout (an error) rolls nothing back that matters.
    const std::string sql = fmt::format(
        "SET LOCAL lock_timeout = {}; SELECT pg_advisory_lock({{}}) IS NOT NULL", timeout->count());
    return run_bool(sql.c_str(), id, true);
}

bool PgSession::unlock(std::int64_t id) noexcept
{
    try {
        if (!conn_) {
            std::fprintf(stderr, "forklock: pg_advisory_unlock(%lld): the session was lost\n",
                         static_cast<long long>(id));
        } else if (run_bool("SELECT pg_advisory_unlock({})", id, false)) {
            return true;
        } else {
            std::fprintf(stderr, "forklock: pg_advisory_unlock(%lld): not held by this session\n",
                         static_cast<long long>(id));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "forklock: %s\n", e.what());
    }
    close(); // whatever this session still holds is released with it
    return false;
}

} // namespace forklock
