#include "locks/modes/postgres_mode.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <unordered_map>

namespace forklock {
namespace {

struct ThreadSession {
    pid_t pid = 0;
    std::unique_ptr<PgSession> session;
};
// The calling thread's sessions, by table serial (two tables in one thread are two sessions,
// so they exclude each other as two processes would).
thread_local std::unordered_map<std::uint64_t, ThreadSession> t_sessions;
std::atomic<std::uint64_t> g_next_serial{1};

} // namespace

std::uint64_t PostgresMode::next_serial() noexcept
{
    return g_next_serial.fetch_add(1, std::memory_order_relaxed);
}

PostgresMode::~PostgresMode() { t_sessions.erase(serial_); }

PgSession& PostgresMode::session() const
{
    ThreadSession& ts = t_sessions[serial_];
    if (ts.session && ts.pid != current_pid()) { // inherited across fork: not ours
        ts.session->abandon();
        ts.session.reset();
    }
    if (!ts.session) {
        ts.session = std::make_unique<PgSession>(parts_.options.url);
        ts.pid = current_pid();
    }
    return *ts.session;
}

PgSession* PostgresMode::own_session() const noexcept
{
    const auto it = t_sessions.find(serial_);
    if (it == t_sessions.end() || it->second.pid != current_pid()) return nullptr;
    return it->second.session.get();
}

bool PostgresMode::unlock_key(std::string_view key, Lease lease) noexcept
{
    try {
        PgSession* pg = own_session();
        if (pg != nullptr && pg->session_id() == lease.session)
            return pg->unlock(pg->key_id(key), lease.session);
        std::fprintf(stderr, "forklock: unlock of '%.*s': the session that took it was lost\n",
                     static_cast<int>(key.size()), key.data());
        return false;
    } catch (const std::exception& e) { // the session is closed: nothing of it stays held
        std::fprintf(stderr, "forklock: unlock: %s\n", e.what());
        return false;
    }
}

} // namespace forklock
