#include "locks/primitives/pg_session.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "os/current_pid.h"

namespace forklock {
namespace {

constexpr const char* kSqlState55P03 = "55P03"; // lock_not_available: lock_timeout expired
constexpr std::size_t kMaxCachedIds = 4096;
constexpr std::string_view kNamePrefix = "forklock host=";
constexpr std::chrono::milliseconds kAnswerGrace{500}; // past statement_timeout: not answering

std::atomic<std::uint64_t> g_next_session{1};

// application_name: who this session is, for pg_stat_activity. PostgreSQL keeps 63 bytes
// (NAMEDATALEN - 1), so a long host name is cut, never the pid.
std::string application_name()
{
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "unknown");
    const std::string pid = std::to_string(current_pid());
    std::string h(host);
    const std::size_t room = 63 - kNamePrefix.size() - std::strlen(" pid=") - pid.size();
    if (h.size() > room) h.resize(room);
    return fmt::format("{}{} pid={}", kNamePrefix, h, pid);
}

// The holder's host and pid back out of application_name(); left empty for other sessions.
void parse_holder(std::string_view name, ServerLock& l)
{
    const auto at = name.rfind(" pid=");
    if (!name.starts_with(kNamePrefix) || at == std::string_view::npos || at < kNamePrefix.size())
        return;
    const char* digits = name.data() + at + 5;
    pid_t pid = 0;
    auto [end, ec] = std::from_chars(digits, name.data() + name.size(), pid);
    if (ec != std::errc() || end != name.data() + name.size()) return;
    l.host = name.substr(kNamePrefix.size(), at - kNamePrefix.size());
    l.pid = pid;
}

// One row per advisory lock of a forklock key in this database: bigint keys are objsubid 1, with
// the high half in classid and the low half in objid. A granted lock's `since` is when its
// session's last statement ended (pg_locks has no grant time); a waiter's is waitstart, which can
// be null for an instant after the wait began.
constexpr const char* kServerLocksSql =
    "SELECT k.key, l.granted, l.pid, coalesce(a.application_name, ''), "
    "coalesce(host(a.client_addr), ''), "
    "coalesce(to_char(s.since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), ''), "
    "coalesce(extract(epoch FROM clock_timestamp() - s.since) * 1000, 0) "
    "FROM pg_locks l "
    "JOIN forklock_keys k ON k.id = (l.classid::bigint << 32) | l.objid::bigint "
    "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "CROSS JOIN LATERAL (SELECT CASE WHEN l.granted THEN a.state_change "
    "ELSE coalesce(l.waitstart, a.query_start) END AS since) s "
    "WHERE l.locktype = 'advisory' AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "ORDER BY k.key, l.granted DESC, s.since";

// One line: libpq's messages end in a newline and may add a tab-indented hint.
std::string one_line(const char* text)
{
    std::string m;
    for (const char* p = text; *p; ++p) {
        const bool space = *p == '\n' || *p == '\t';
        if (!space)
            m += *p;
        else if (!m.empty() && m.back() != ' ')
            m += ' ';
    }
    while (!m.empty() && m.back() == ' ') m.pop_back();
    return m;
}

std::string message_of(PGconn* conn)
{
    return one_line(conn ? PQerrorMessage(conn) : "out of memory");
}

} // namespace

void PgSession::ResultDeleter::operator()(pg_result* r) const noexcept { PQclear(r); }

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
    // Entries before the expanded dbname (the URL) are defaults it may override; after it, they
    // override it.
    const std::string timeout = std::to_string(kConnectTimeoutS);
    const std::string name = application_name();
    const char* keys[] = {"connect_timeout", "dbname", "application_name", nullptr};
    const char* values[] = {timeout.c_str(), url_.c_str(), name.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) fail("connect");
    fatal_ = false;
    session_id_ = g_next_session.fetch_add(1, std::memory_order_relaxed);
    // Notices are dropped (CREATE ... IF NOT EXISTS), but one that is FATAL is what a backend
    // sends before it closes a session that was idle (libpq passes it here, not as a result).
    PQsetNoticeReceiver(
        conn_,
        [](void* self, const PGresult* r) {
            const char* severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
            if (severity &&
                (std::strcmp(severity, "FATAL") == 0 || std::strcmp(severity, "PANIC") == 0))
                static_cast<PgSession*>(self)->fatal_ = true;
        },
        this);
    return conn_;
}

bool PgSession::alive() noexcept
{
    if (!conn_) return false;
    // Usually nothing is there and this is one poll(). A FATAL message and the close can come
    // apart, so read a few times while there is more.
    for (int reads = 0; reads < 4 && !fatal_ && PQstatus(conn_) == CONNECTION_OK; ++reads) {
        pollfd p{PQsocket(conn_), POLLIN, 0};
        const int ready = ::poll(&p, 1, 0);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) break;
        if (PQconsumeInput(conn_) == 0) break; // EOF or a reset: the status says so
        (void)PQisBusy(conn_); // parses what was read: a FATAL reaches the notice receiver
    }
    if (!fatal_ && PQstatus(conn_) == CONNECTION_OK) return true;
    close();
    return false;
}

void PgSession::prepare_database()
{
    Result r(PQexec(connection(), "BEGIN; SELECT pg_advisory_xact_lock(1718384491, 0); "
                                  "CREATE TABLE IF NOT EXISTS forklock_keys "
                                  "(key text PRIMARY KEY, id bigserial UNIQUE NOT NULL); "
                                  "ALTER TABLE forklock_keys ADD COLUMN IF NOT EXISTS "
                                  "fence bigint NOT NULL DEFAULT 0; COMMIT"));
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
                          1, nullptr, params, nullptr, nullptr, 0));
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
    Result r(PQexec(connection(), query.c_str()));
    if (PQresultStatus(r.get()) == PGRES_TUPLES_OK && PQntuples(r.get()) == 1)
        return PQgetvalue(r.get(), 0, 0)[0] == 't';
    const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    if (lock_wait && state && std::string_view(state) == kSqlState55P03 &&
        PQstatus(conn_) == CONNECTION_OK)
        return false;
    fail(fmt::format("advisory lock {}", id));
}

std::uint64_t PgSession::next_token(std::int64_t id, std::uint64_t floor)
{
    const std::string query = fmt::format(
        "UPDATE forklock_keys SET fence = GREATEST(fence + 1, {}) WHERE id = {} RETURNING fence",
        std::min<std::uint64_t>(floor, INT64_MAX), id);
    Result r(PQexec(connection(), query.c_str()));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1)
        fail(fmt::format("fencing token of advisory lock {}", id));
    return std::stoull(PQgetvalue(r.get(), 0, 0));
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

bool PgSession::unlock(std::int64_t id, std::uint64_t session) noexcept
{
    if (session == 0 || session != session_id()) {
        std::fprintf(stderr,
                     "forklock: pg_advisory_unlock(%lld): the session that took it was lost\n",
                     static_cast<long long>(id));
        return false;
    }
    try {
        if (run_bool("SELECT pg_advisory_unlock({})", id, false)) return true;
        std::fprintf(stderr, "forklock: pg_advisory_unlock(%lld): not held by this session\n",
                     static_cast<long long>(id));
    } catch (const std::exception& e) { // the session is closed already
        std::fprintf(stderr, "forklock: %s\n", e.what());
        return false;
    }
    close(); // whatever this session still holds is released with it
    return false;
}

// run_within: `sql` sent without waiting, its answer awaited until `timeout` has passed; the
// first failed statement's result, else the last one's. No answer in time: closes, throws.
PgSession::Result PgSession::run_within(const std::string& sql, std::chrono::milliseconds timeout)
{
    PGconn* c = connection();
    if (PQsendQuery(c, sql.c_str()) != 1) fail("send");
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Result kept;
    for (;;) {
        while (PQisBusy(c)) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                close();
                throw LockServerError(
                    fmt::format("PostgreSQL: no answer within {} ms", timeout.count()));
            }
            pollfd p{PQsocket(c), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) fail("poll");
            if (PQconsumeInput(c) == 0) fail("query");
        }
        Result r(PQgetResult(c));
        if (!r) return kept;
        if (!kept || PQresultStatus(kept.get()) != PGRES_FATAL_ERROR) kept = std::move(r);
    }
}

std::vector<ServerLock> PgSession::server_locks(std::chrono::milliseconds timeout)
{
    alive(); // a session lost while idle reconnects instead of failing
    const std::string sql =
        fmt::format("SET LOCAL statement_timeout = {}; {}",
                    std::max<std::int64_t>(timeout.count(), 1), kServerLocksSql);
    const Result r = run_within(sql, timeout + kAnswerGrace);
    if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
        const char* why = r ? PQresultErrorMessage(r.get()) : "no result";
        throw LockServerError(fmt::format("PostgreSQL pg_locks: {}", one_line(why)));
    }
    std::vector<ServerLock> out;
    for (int row = 0; row < PQntuples(r.get()); ++row) {
        auto field = [&](int column) { return std::string(PQgetvalue(r.get(), row, column)); };
        ServerLock l;
        l.key = field(0);
        l.granted = field(1) == "t";
        l.backend_pid = std::stoi(field(2));
        l.application_name = field(3);
        l.client_addr = field(4);
        l.since = field(5);
        l.for_ms = std::stod(field(6));
        parse_holder(l.application_name, l);
        out.push_back(std::move(l));
    }
    return out;
}

} // namespace forklock
