#include "arbiter.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "app/log.h"
#include "app/site_guard.h"
#include "app/token_epoch.h"
#include "os/monotonic_clock.h"
#include "os/os_error.h"
#include "worker.h"

namespace forklock {
namespace {

constexpr std::chrono::milliseconds kTick{200};
constexpr std::chrono::milliseconds kStopPoll{50};

void write_pid_file(const std::filesystem::path& path, pid_t pid)
{
    std::ofstream out(path, std::ios::trunc);
    out << pid << "\n";
    if (!out.flush()) throw os_error(errno, "write({})", path.string());
}

std::string_view origin_text(TableOrigin origin)
{
    switch (origin) {
    case TableOrigin::anonymous: return "anonymous";
    case TableOrigin::created: return "created";
    case TableOrigin::rebuilt: return "rebuilt: a stale table under the name had no live user";
    case TableOrigin::joined: return "joined: shared with another live server (--lock-share)";
    }
    return "?";
}

} // namespace

Arbiter::Arbiter(const Options& options, Startup startup)
    : options_(options), num_workers_(options.workers), pid_(::getpid()),
      signals_({SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH,
                SIGCHLD}),
      startup_(std::move(startup)), notifier_(!startup_.upgrade)
{
    ::signal(SIGPIPE, SIG_IGN);
    // A new master joins the named table the old one holds: it is the same server, upgraded.
    if (startup_.upgrade && !options_.lock_name.empty()) options_.lock_share = true;
}

Arbiter::~Arbiter()
{
    std::error_code ignored; // the pid file may already be gone; nothing to do about it here
    if (!pid_file_.empty()) std::filesystem::remove(pid_file_, ignored);
}

int Arbiter::run()
{
    try {
        start();
    } catch (const LockNameError& e) {
        log(LogLevel::error, "{}", e.what());
        return kExitLockNameInUse;
    } catch (const LockServerError& e) {
        log(LogLevel::error, "--lock-url: {}", e.what());
        return kExitLockServer;
    } catch (const std::exception& e) {
        log(LogLevel::error, "{}", e.what());
        return kExitStartError;
    }
    spawn_workers();
    while (!stop_request_) {
        if (auto sig = signals_.wait(kTick)) dispatch(*sig);
        if (stop_request_) break;
        murder_workers();
        watch_upgrade();
        manage_workers();
        announce_ready();
    }
    return halt(*stop_request_);
}

void Arbiter::start()
{
    log(LogLevel::info, "Starting forklock 0.1.0");
    CounterStore::create_directory(options_.data_dir);
    if (facts(options_.lock_mode).needs_lock_dir)
        CounterStore::create_directory(lock_dir_for(options_.data_dir));
    store_ = std::make_unique<CounterStore>(options_.data_dir);
    take_token_epoch(); // before any table is made
    // After a USR2 the old master's workers are writing theirs: it removes them as they die.
    if (auto n = startup_.upgrade ? 0 : store_->remove_temp_files())
        log(LogLevel::info, "Removed {} stale temporary file(s) from {}", n,
            options_.data_dir.string());
    // The table first, as gunicorn loads a preloaded app before it binds: a bad --lock-url, a
    // PostgreSQL that is down or a named table in use stops the server before it says
    // "Listening at".
    scoreboard_ = std::make_unique<Scoreboard>(pid_, current_config());
    make_table();
    listen();
    if (!options_.pid_file.empty()) {
        write_pid_file(options_.pid_file, pid_);
        pid_file_ = options_.pid_file;
    }
    log(LogLevel::info, "Listening at: {} ({})", bind_url(listener_->address()), pid_);
    if (options_.dashboard_token.empty()) options_.dashboard_token = make_dashboard_token();
    BindAddress local = listener_->address(); // a URL a browser on this host can open
    if (local.host == "0.0.0.0" || local.host == "::")
        local.host = local.host == "::" ? "::1" : "127.0.0.1";
    log(LogLevel::info, "Dashboard: {}/dashboard?token={} (controls: {})", bind_url(local),
        options_.dashboard_token, to_string(options_.dashboard_controls));
    log(LogLevel::info, "Hosts: {}", describe_host_policy(options_));
    log(LogLevel::info, "Lock mode: {}: {}", to_string(options_.lock_mode),
        explain(options_.lock_mode));
    warn_lost_updates();
    metrics_ = std::make_unique<LockMetrics>();
    if (options_.trace) trace_ = std::make_unique<TraceRing>(options_.trace_size);
}

ServerConfig Arbiter::current_config() const
{
    return {generation_, options_.lock_mode, options_.preload, num_workers_, options_.threads};
}

// reload: as nginx on HUP, the next generation is checked before any worker is replaced: its
// options (the ones /control/config asked for, if newer than what runs; else the running ones)
// and its table (next_table()). Returns false when a check failed: logged, answered to a waiting
// /control/config through the scoreboard, and nothing changed: the old workers keep serving.
// A refused request is consumed all the same: it is not retried on every HUP.
bool Arbiter::reload()
{
    const ServerConfig want = scoreboard_->requested_config();
    const bool asked = want.generation > generation_;
    Options next = options_;
    if (asked) {
        next.lock_mode = want.mode;
        next.preload = want.preload;
        next.workers = want.workers;
        next.threads = want.threads;
    }
    try {
        table_ = next_table(next, asked);
    } catch (const std::exception& e) {
        const std::string what =
            asked ? fmt::format("Configuration {}", want.generation) : std::string("Reload");
        log(LogLevel::error, "{} refused; the running configuration and its workers are kept: {}",
            what, e.what());
        if (asked) {
            scoreboard_->refuse_config(want.generation, e.what());
            generation_ = want.generation;
            scoreboard_->publish_config(current_config());
        }
        return false;
    }
    if (!asked) return true;
    options_ = next;
    num_workers_ = want.workers;
    generation_ = want.generation;
    scoreboard_->publish_config(current_config());
    log(LogLevel::info, "Configuration {}: lock mode {}{}, {} worker(s) x {} thread(s): {}",
        generation_, to_string(options_.lock_mode), options_.preload ? " with preload" : "",
        num_workers_, options_.threads, explain(options_.lock_mode));
    warn_lost_updates();
    return true;
}

// next_table: the table the next generation's workers get, after every check that can be made in
// the master: a PostgreSQL that is down or refuses (a table made and dropped, as at start), a
// named table another live server holds (claimed here, as at start: LockNameError), a named
// table asked to change its mode. Throws what a new worker would otherwise fail to boot with.
// The old table is not destroyed here: each old worker's entry holds it.
std::shared_ptr<LockTable> Arbiter::next_table(const Options& next, bool changed) const
{
    const LockTableOptions now = lock_table_options(options_);
    const LockTableOptions o = lock_table_options(next);
    if (facts(next.lock_mode).needs_lock_dir)
        CounterStore::create_directory(lock_dir_for(next.data_dir));
    if (!now.name.empty() && o.mode != now.mode)
        throw std::runtime_error("--lock-name: a named table keeps its lock mode while workers "
                                 "hold it open; restart the server to change the mode");
    if (!now.name.empty()) return table_; // one named table for every generation
    if (!o.name.empty()) return std::make_shared<LockTable>(o);
    if (facts(o.mode).uses_lock_server && !(changed && next.preload)) {
        LockTable probe(o); // reaches the server and makes its key table, then goes
    }
    if (!changed) return table_;
    if (!next.preload) return nullptr;
    auto table = std::make_shared<LockTable>(o);
    table->raise_token_floor(advance_token_epoch(next.data_dir)); // above the old table's tokens
    return table;
}

// make_table: the master's table, with --preload (inherited by the workers) or --lock-name (the
// name is claimed here, before fork, so a second live server is refused before it serves; the
// workers open it by name; the master keeps it to free a dead worker's keys and, as its last
// user at exit, to remove the name). postgres without --preload: a table made and dropped at once,
// so a PostgreSQL that is down or a bad --lock-url stops the server here, before fork.
// take_token_epoch: the fencing tokens' restart seed (token_epoch.h). Without --fencing a data
// directory that cannot keep it only costs the guarantee across restarts: a warning, and the
// workers' own boot check reports the directory. With --fencing it stops the start.
void Arbiter::take_token_epoch()
{
    try {
        options_.token_floor = advance_token_epoch(options_.data_dir);
    } catch (const std::exception& e) {
        if (options_.fencing) throw;
        log(LogLevel::warning,
            "Fencing tokens: no restart epoch ({}): tokens start at 0 and may repeat the last "
            "run's",
            e.what());
    }
}

void Arbiter::make_table()
{
    const LockTableOptions o = lock_table_options(options_);
    if (!options_.lock_name.empty() && o.name.empty())
        log(LogLevel::info,
            "--lock-name {} has no effect in {} mode: the kernel already shares "
            "lock files by path",
            options_.lock_name, to_string(options_.lock_mode));
    if (facts(o.mode).uses_lock_server && !options_.preload) {
        LockTable probe(o); // reaches the server and makes its key table, before fork
        return;
    }
    if (!options_.preload && o.name.empty()) return;
    table_ = std::make_shared<LockTable>(o);
    table_->raise_token_floor(options_.token_floor);
    if (!o.name.empty())
        log(LogLevel::info, "Lock table '{}' ({}): {}", o.name, "/dev/shm/forklock-" + o.name,
            origin_text(table_->origin()));
}

void Arbiter::warn_lost_updates()
{
    Options now = options_;
    now.workers = num_workers_;
    for (const auto& why : lost_update_warnings(now))
        log(LogLevel::warning, "This configuration loses updates: {}", why);
}

void Arbiter::stop(bool graceful)
{
    stopping_ = true;
    listener_.reset();
    kill_workers(graceful ? SIGTERM : SIGQUIT);
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(options_.graceful_timeout_s);
    while (!workers_.empty() && std::chrono::steady_clock::now() < deadline) {
        auto sig = signals_.wait(kStopPoll);
        if (sig == SIGINT || sig == SIGQUIT) kill_workers(SIGQUIT);
        reap_workers();
    }
    kill_workers(SIGKILL);
    while (!workers_.empty()) {
        const pid_t pid = workers_.begin()->first;
        int status = 0;
        if (::waitpid(pid, &status, 0) == pid)
            worker_exited(pid, status);
        else if (errno != EINTR)
            worker_lost(pid, errno);
    }
}

// request_stop: the callers run inside reap_workers() or dispatch(), maybe inside stop() itself,
// so the stop is only recorded here; run() leaves its loop and halt()s.
void Arbiter::request_stop(StopRequest request)
{
    if (!stop_request_) stop_request_ = std::move(request);
}

// halt: as gunicorn's: stop the workers (freeing what they held), and return the exit code for
// run() to return.
int Arbiter::halt(const StopRequest& request)
{
    if (!request.reason.empty()) log(LogLevel::error, "{}", request.reason);
    // A new master stopped while the master it replaced still runs is a rollback: systemd's
    // main process is that one again.
    if (startup_.upgrade && ::getppid() == startup_.upgrade->old_master) notifier_.hand_over();
    notifier_.send("STOPPING=1");
    stop(request.graceful);
    log(LogLevel::info, "Shutting down: Master");
    return request.exit_code;
}

} // namespace forklock
