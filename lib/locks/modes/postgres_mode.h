#pragma once
// postgres: PostgreSQL session-level advisory locks, one exact bigint id per key (pg_session.h
// says why not a hash). Shared across threads, processes and machines: everything connected to
// one database excludes everything else, with or without preload.
//
// Connections: one per (table, thread), opened on that thread's first lock and never inherited:
// a session whose pid is not the caller's (a forked child's copy) is abandoned (its socket closed
// without a word to the server) and a new one opened. A thread's sessions end when the thread
// exits; destroying the table ends the calling thread's at once.
//
// Holder death: PostgreSQL releases a session's locks when its connection closes, which the
// kernel does at once for a killed process (pg_session.h: a vanished host). The slots here only
// carry statistics and owner_pid, shared if the table was made before fork (as flock's): the next
// holder or release_owned_by() clears a dead holder's owner word and counts the recovery.
//
// Errors: a PostgreSQL that cannot be reached, refuses or loses the connection makes lock(),
// try_lock() and lock_for() throw LockServerError (HTTP 503), and the next call reconnects. A
// session lost while idle (it holds nothing) is noticed by the next lock's poll() and reconnected
// without an error.
// Lost while a key is held: PostgreSQL released the key when the session ended, so another
// holder may already be inside. Each guard keeps a Lease, the number of the session that took
// it: KeyGuard::still_held() looks at that session's socket without a round trip (lock_table.h
// says what window remains), and unlock() returns false for a lease whose session is gone,
// without touching the newer session's locks.
//
// Contract: shared across threads, processes and machines connected to one database
// (options.url). A server that is down or lost makes lock() throw LockServerError. Here alone a
// held key can be lost under its holder (its session ends: the server restarts, an administrator
// terminates it): see KeyGuard::still_held(). Here alone locking a key this thread holds does not
// deadlock (the session counts it twice): as invalid as elsewhere.
//
// Who holds what: server_locks() asks pg_locks joined with pg_stat_activity and forklock_keys
// (pg_session.h), on the calling thread's session: a worker thread serves one request at a time,
// so between requests its session holds nothing, and a session that times out can be closed
// without losing anyone's key. Bounded by a statement_timeout and a client-side deadline.
//
// A PostgreSQL restart while serving: every session ends (held keys are lost and said so), each
// call while it is down throws LockServerError at once (a refused connect; connect_timeout bounds
// one that is not refused), and the first lock after it is back reconnects: nothing to restart.
//
// The dashboard's POST /control/config switches to this mode with the server's --lock-url, and
// refuses (403) on a server started without one: a request never carries a URL.
//
// Why the advisory lock is tried before the slot is pinned: as in flock mode, a process killed
// between pin and owner word leaves a reference nobody returns, and the round trip to PostgreSQL
// is the slow step; so before_pin() tries the lock once and take() waits only when it failed.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "locks/modes/mode.h"
#include "locks/primitives/pg_session.h"

namespace forklock {

class PostgresMode final : public ModeBase {
public:
    using Handle = Lease;
    // Early: the advisory lock before_pin() tried. Move-only; a lock nobody took over (pin()
    // threw: the table is full) is given back by the destructor, or the session would keep it.
    class Early {
    public:
        Early(PgSession* pg, std::int64_t id, bool locked) noexcept
            : pg_(pg), id_(id), session_(locked ? pg->session_id() : 0)
        {
        }
        Early(Early&& o) noexcept : pg_(o.pg_), id_(o.id_), session_(std::exchange(o.session_, 0))
        {
        }
        Early& operator=(Early&&) = delete;
        ~Early()
        {
            if (session_) pg_->unlock(id_, session_);
        }
        std::int64_t id() const noexcept { return id_; }
        bool locked() const noexcept { return session_ != 0; }
        // take: the tried lock is the caller's from now on.
        Lease take() noexcept { return Lease{std::exchange(session_, 0)}; }

    private:
        PgSession* pg_;
        std::int64_t id_;
        std::uint64_t session_; // the session holding the tried lock, 0 when not held
    };

    explicit PostgresMode(const ModeParts& parts) : ModeBase(parts) {}
    ~PostgresMode(); // ends the calling thread's session of this table
    PostgresMode(const PostgresMode&) = delete;
    PostgresMode& operator=(const PostgresMode&) = delete;

    // validate: a URL is given and the server answers; makes forklock_keys. The connection is
    // closed again, so nothing is inherited by workers forked after.
    static void validate(const LockTableOptions& o)
    {
        if (o.url.empty()) throw std::invalid_argument("postgres mode needs a url");
        PgSession(o.url).prepare_database();
    }

    // before_pin: a session lost while idle (it holds nothing) reconnects here rather than fail
    // this request; one poll() when it is fine.
    Early before_pin(std::string_view key)
    {
        PgSession& pg = session();
        pg.alive();
        const std::int64_t id = pg.key_id(key);
        return Early(&pg, id, pg.try_lock(id));
    }
    Taken<Handle> take(Slot& s, std::uint32_t, Deadline deadline, Early&& early)
    {
        Taken<Handle> t;
        if (early.locked()) {
            t.handle = early.take();
        } else if (!expired(deadline)) { // try_lock: before_pin's try was the one
            PgSession& pg = session();
            if (blocking(s, t, [&] { return pg.lock(early.id(), ms_until(deadline)); }))
                t.handle = Lease{pg.session_id()};
        }
        if (t.handle.session != 0) {
            own(s, t);
            t.fence = token_of(early.id(), s);
        }
        return t;
    }
    void unlock(Slot& s, Lease&& lease) noexcept
    {
        s.owner_pid.store(0, std::memory_order_release);
        unlock_key(s.key_view(), lease);
    }
    bool release(Slot& s, Lease&& lease) noexcept
    {
        s.owner_pid.store(0, std::memory_order_release);
        const std::string key(s.key_view()); // copied: the unpinned slot may be rebound
        unpin(s);
        return unlock_key(key, lease);
    }

    // still_held: the lease's session is this thread's connection and is still up.
    bool still_held(Lease lease) const noexcept
    {
        PgSession* pg = own_session();
        return pg != nullptr && pg->session_id() == lease.session && pg->alive();
    }
    std::vector<ServerLock> server_locks(std::chrono::milliseconds timeout) const
    {
        return session().server_locks(timeout);
    }

    // release_dead (the default): PostgreSQL already released the lock with the dead holder's
    // session; this clears the bookkeeping and returns the dead holder's reference.

private:
    // session: this thread's session of this table, made (not connected) if it has none.
    PgSession& session() const;
    // own_session: this thread's session of this table if it has one of its own; makes none.
    PgSession* own_session() const noexcept;
    // unlock_key: false when the lease's session is gone (PgSession::unlock logs it); the key
    // id is looked up only for a live lease, so a lost one never reconnects here.
    bool unlock_key(std::string_view key, Lease lease) noexcept;
    static std::uint64_t next_serial() noexcept;

    static std::optional<std::chrono::milliseconds> ms_until(Deadline deadline) noexcept
    {
        if (!deadline) return std::nullopt;
        const std::int64_t left = *deadline - monotonic_ns();
        return std::chrono::milliseconds(left <= 0 ? 0 : (left + 999'999) / 1'000'000);
    }
    // token_of: the grant's fencing token from the database (PgSession::next_token), and at
    // least the table's floor. If the database cannot answer, the key is let go and the error
    // thrown: a grant without its token could not be fenced.
    std::uint64_t token_of(std::int64_t id, Slot& s)
    {
        try {
            const std::uint64_t token =
                session().next_token(id, s.fence.load(std::memory_order_relaxed) + 1);
            s.fence.store(token, std::memory_order_relaxed);
            return token;
        } catch (...) {
            unlock(s, Lease{session().session_id()});
            throw;
        }
    }
    // own: the advisory lock is ours; so is the key. owner_pid still set means its holder died
    // holding it (PostgreSQL released it) before a supervisor cleaned up: that recovery is ours.
    void own(Slot& s, Taken<Handle>& t) noexcept
    {
        t.ok = true;
        const pid_t previous = s.owner_pid.exchange(current_pid(), std::memory_order_acq_rel);
        if (previous != 0) {
            t.recovered_from = previous;
            count_recovery(s, previous);
            unpin(s);
        }
    }

    const std::uint64_t serial_ = next_serial(); // this table's sessions, in every thread
};

} // namespace forklock
