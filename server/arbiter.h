#pragma once
// Arbiter: the master process, after gunicorn's arbiter.py. Binds before fork, creates the
// shared state (the scoreboard, lock metrics and trace always; the lock table with --preload),
// keeps N workers alive and
// turns signals into actions:
//   TERM graceful stop, INT/QUIT quick stop, HUP new workers replace the old ones (in the
//   configuration /control/config asked for, if it asked since: a new lock table, made here with
//   preload; the old table stays alive until its last draining worker is reaped) once the new
//   configuration passed the checks the master can make (a reachable PostgreSQL, a named table
//   it may claim); one that fails them replaces nothing, as nginx keeps its old configuration,
//   TTIN/TTOU one worker more/less, USR1 reopen the access log, CHLD reap (and respawn),
//   USR2 start the binary again as a new master on the same socket, WINCH (once that one serves)
//   stop this master's workers gracefully: nginx's binary upgrade (arbiter_upgrade.cpp).
// With -c FILE, a HUP first reads the file again (arbiter_ops.cpp); with systemd, the master
// serves the socket it was passed and tells NOTIFY_SOCKET READY, RELOADING and STOPPING.
// The files: arbiter.cpp (start, stop, the configuration), arbiter_workers.cpp (spawn, reap,
// murder, manage), arbiter_signals.cpp (dispatch and the handlers), arbiter_upgrade.cpp, and
// arbiter_ops.cpp (config file, socket, systemd).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/counter_store.h"
#include "app/options.h"
#include "app/scoreboard.h"
#include "listener.h"
#include <forklock/lock_table.h>
#include "signal_queue.h"
#include "systemd.h"
#include "upgrade.h"
#include "trace/histogram.h"
#include "trace/trace_ring.h"

namespace forklock {

// What main() hands the master besides the options.
struct Startup {
    std::optional<UniqueFd> listen_socket; // systemd's (socket activation); none: bind
    std::filesystem::path config_file;     // -c FILE; empty: a HUP reads no file
    std::vector<std::string> args;         // the command line, parsed again on HUP
    std::vector<Setting> settings;         // as loaded, for the HUP to compare with
    std::filesystem::path binary;          // what USR2 runs (upgrade.h's own_binary())
    std::optional<UpgradeHandoff> upgrade; // set when this master was started by a USR2
};

class Arbiter final {
public:
    // Exit codes: 0 after a stop by signal, 1 when the master can't start, 2 when --lock-name is
    // a live server's and not shared, 3 when a worker can't boot (gunicorn's WORKER_BOOT_ERROR).
    static constexpr int kExitStartError = 1;
    static constexpr int kExitLockNameInUse = 2; // --lock-name of a live server, not shared
    static constexpr int kExitLockServer = 2;    // --lock-url: PostgreSQL down, refusing, bad URL
    static constexpr int kExitBootError = 3;

    explicit Arbiter(const Options& options, Startup startup = {});
    ~Arbiter();
    Arbiter(const Arbiter&) = delete;
    Arbiter& operator=(const Arbiter&) = delete;

    // Runs until stopped; returns the exit code.
    int run();

private:
    struct Worker {
        std::size_t slot = 0;
        std::int64_t born_ns = 0;
        bool retiring = false;            // told to stop: not counted, not respawned
        bool killed = false;              // SIGKILLed for a timeout already
        std::int64_t aborted_ns = 0;      // when it was sent SIGABRT for a timeout (0: not yet)
        std::shared_ptr<LockTable> table; // the preloaded table it inherited, or null
    };

    // Why and how the master stops: set by a signal handler or a worker that can't boot, acted
    // on by run(); the first request wins.
    struct StopRequest {
        int exit_code = 0;
        bool graceful = true;
        std::string reason; // logged by halt(); empty for a stop by signal
    };

    void start();
    void spawn_workers();
    void spawn_worker();
    void reap_workers();
    void worker_exited(pid_t pid, int status);
    void worker_lost(pid_t pid, int wait_errno);
    void forget_worker(pid_t pid, int status);
    void record_death(pid_t pid, int status, const std::shared_ptr<LockTable>& table);
    void murder_workers();
    void manage_workers();
    void retire_oldest(std::size_t count);
    void kill_worker(pid_t pid, int sig);
    void kill_workers(int sig);
    void request_stop(StopRequest request);
    void stop(bool graceful);
    int halt(const StopRequest& request);
    void take_token_epoch();
    void make_table();
    void warn_lost_updates();
    bool reload();
    std::shared_ptr<LockTable> next_table(const Options& next, bool changed) const;
    ServerConfig current_config() const;
    // arbiter_ops.cpp: the config file on HUP, the listening socket, systemd's notifications.
    bool reread_config_file();
    bool reload_with_file();
    void listen();
    void announce_ready();

    // arbiter_upgrade.cpp: USR2, WINCH and the new master they watch.
    std::string upgrade_refusal() const;
    void watch_upgrade();
    void upgrade_exited(int status);
    void upgrade_ready();
    bool move_pid_file(const std::filesystem::path& to);

    void dispatch(int sig);
    void handle_chld();
    void handle_hup();
    void handle_term();
    void handle_int();
    void handle_quit();
    void handle_ttin();
    void handle_ttou();
    void handle_usr1();
    void handle_usr2();
    void handle_winch();

    Options options_;
    int num_workers_;
    pid_t pid_;
    SignalQueue signals_;
    std::optional<Listener> listener_;
    std::unique_ptr<Scoreboard> scoreboard_;
    std::shared_ptr<LockTable> table_; // --preload or --lock-name; workers keep theirs (see Worker)
    std::unique_ptr<CounterStore> store_;
    std::unique_ptr<LockMetrics> metrics_; // always, before fork: one scrape sees every worker
    std::unique_ptr<TraceRing> trace_; // before fork whatever the lock mode; null with --no-trace
    std::map<pid_t, Worker> workers_;
    std::optional<StopRequest> stop_request_;
    std::uint32_t generation_ = 0; // of the configuration running: 0 = the command line's
    bool stopping_ = false;
    std::filesystem::path pid_file_; // where this master's pid is written (.oldbin after USR2)
    Startup startup_;
    Notifier notifier_;
    bool announce_ready_ = true; // READY=1 is due once every worker serves (start, HUP)

    // A new master started by USR2, watched until it exits (this master may exit first).
    struct Upgrade {
        pid_t pid = -1;
        UniqueFd ready;                                 // one byte: it serves
        std::chrono::steady_clock::time_point deadline; // to serve, else it is killed
        bool serving = false;
        bool killed = false;
        bool winch_due = false; // a WINCH came before it served
    };
    std::optional<Upgrade> upgrade_;
    bool winched_ = false; // WINCH: no workers, the new master serves; HUP or its exit undoes it
};

} // namespace forklock
