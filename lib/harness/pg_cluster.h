#pragma once
// PgCluster: a throwaway PostgreSQL 15 server for the tests and the demo, made and destroyed by
// one object. The contract:
// - Where: initdb makes a fresh cluster in a private temporary directory ($TMPDIR or /tmp,
//   "forklock-pg.XXXXXX"); the server listens on a Unix socket in that directory only
//   (listen_addresses = ''), so no TCP port is taken and nothing outside the directory can reach
//   it but a process of the same user (or root). Dynamic shared memory lives in files in the
//   data directory (dynamic_shared_memory_type = mmap), so nothing is left in /dev/shm.
// - Who: PostgreSQL refuses to run as root. When the effective uid is 0 (CI), initdb and postgres
//   run as the user `nobody` (a fork that drops its groups, gid and uid before exec), and the
//   directory is chowned to it; otherwise they run as the calling user.
// - Start: the constructor returns once the server accepts connections (PQping), or throws
//   std::runtime_error with the tail of the server's log if initdb fails, the server exits, or it
//   is not ready by the timeout (the half-made cluster is then stopped and removed).
// - Stop: the destructor asks for a fast shutdown (SIGINT: sessions are ended, their locks
//   released), SIGKILLs the postmaster if it has not exited within 10 s, reaps it and removes
//   the directory. Also when a test fails and unwinds through it.
// - Death of the owner: the postmaster gets SIGQUIT (an immediate shutdown that still removes
//   its shared memory) through PR_SET_PDEATHSIG when the thread that constructed the PgCluster
//   dies, so construct it on the main thread (or one that outlives it). The directory is then
//   left behind in $TMPDIR: only a live owner can remove it.
// - Restart in place: stop() then start() on the same data directory, for tests of a PostgreSQL
//   that goes away while a server uses it: the socket file disappears while it is stopped (a
//   connect fails at once), the data (forklock_keys) survives, the conninfo stays the same.
// - Not covered: TCP listeners (a cluster "on another machine" is reached through the same
//   socket), and sharing one cluster between test binaries. PostgreSQL 15's binaries are expected
//   in /usr/lib/postgresql/15/bin (Debian's postgresql-15); available() says whether they are.
// Not copyable or movable: the postmaster's pid and the directory belong to this object. Not
// thread-safe; connections to it may be made from any thread or process.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "harness/temp_dir.h"

namespace forklock::harness {

class PgCluster final {
public:
    // Creates, starts and waits for the cluster (see above). Throws std::system_error when a
    // system call fails and std::runtime_error when PostgreSQL does.
    explicit PgCluster(std::chrono::milliseconds start_timeout = std::chrono::seconds(60));
    ~PgCluster();
    PgCluster(const PgCluster&) = delete;
    PgCluster& operator=(const PgCluster&) = delete;

    // available: PostgreSQL 15's initdb and postgres are installed where the constructor looks.
    [[nodiscard]] static bool available();

    // conninfo: a libpq connection string for the superuser `forklock` and database `postgres`,
    // e.g. "host=/tmp/forklock-pg.abc123 port=5432 user=forklock dbname=postgres".
    [[nodiscard]] const std::string& conninfo() const noexcept { return conninfo_; }
    // directory: the temporary directory (socket, logs, data/); removed by the destructor.
    [[nodiscard]] const std::filesystem::path& directory() const noexcept { return dir_.path(); }
    // postmaster_pid: the server's pid while it runs (0 once stopped).
    [[nodiscard]] pid_t postmaster_pid() const noexcept { return postmaster_; }

    // stop: a fast shutdown (sessions are ended, their locks released), waited for; SIGKILL
    // after 10 s. Returns once the postmaster has exited. Nothing if it is not running.
    void stop() noexcept;
    // start: starts the stopped cluster again on its data directory and waits until it accepts
    // connections, as the constructor does (its PDEATHSIG follows the calling thread). Nothing
    // if it runs. Throws std::runtime_error with the log's tail if it does not come up.
    void start(std::chrono::milliseconds timeout = std::chrono::seconds(60));

private:
    void initdb();
    [[nodiscard]] std::string log_tail(const std::string& file) const;

    TempDir dir_; // declared first: removed after the server has stopped
    std::string conninfo_;
    pid_t postmaster_ = 0;
};

} // namespace forklock::harness
