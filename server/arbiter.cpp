#include "arbiter.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <vector>

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
constexpr std::int64_t kAbortGraceNs = 1'000'000'000; // SIGABRT, then SIGKILL this much later

std::string signal_name(int sig)
{
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : std::to_string(sig);
}

std::string lower_name(int sig)
{
    std::string name = ::sigabbrev_np(sig) ? ::sigabbrev_np(sig) : "?";
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return name;
}

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
      signals_({SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGTTIN, SIGTTOU, SIGUSR1, SIGCHLD}),
      startup_(std::move(startup))
{
    ::signal(SIGPIPE, SIG_IGN);
}

Arbiter::~Arbiter()
{
    std::error_code ignored; // the pid file may already be gone; nothing to do about it here
    if (pid_file_written_) std::filesystem::remove(options_.pid_file, ignored);
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
    if (auto n = store_->remove_temp_files())
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
        pid_file_written_ = true;
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

void Arbiter::spawn_workers()
{
    for (int i = 0; i < num_workers_; ++i) spawn_worker();
}

void Arbiter::spawn_worker()
{
    auto slot = scoreboard_->claim(static_cast<std::uint32_t>(options_.threads));
    if (!slot)
        return log(LogLevel::error, "No free scoreboard slot: at most {} workers", kMaxWorkers);
    std::uint64_t max_requests = options_.max_requests;
    if (max_requests > 0 && options_.max_requests_jitter > 0) {
        static std::mt19937_64 rng{std::random_device{}()};
        max_requests +=
            std::uniform_int_distribution<std::uint64_t>(0, options_.max_requests_jitter)(rng);
    }
    // Signals stay blocked across fork() until the child has its own handlers: a TERM sent to a
    // brand-new worker must not run the master's handler (and land in the master's queue).
    sigset_t all, before;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &before);
    pid_t pid = ::fork();
    if (pid == 0)
        run_worker(WorkerSpec{&options_, listener_->fd(), scoreboard_.get(), *slot, pid_,
                              options_.preload ? table_.get() : nullptr, &signals_, max_requests,
                              trace_.get(), metrics_.get(), generation_});
    const int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    if (pid < 0) {
        scoreboard_->release(*slot);
        return log(LogLevel::error, "fork() failed: {}", std::strerror(fork_errno));
    }
    scoreboard_->slot(*slot).pid = pid;
    workers_[pid] = Worker{*slot, Scoreboard::now_ns(), false, false, 0, table_};
}

void Arbiter::reap_workers()
{
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0)
        if (workers_.count(pid)) worker_exited(pid, status);
}

// worker_exited: a worker reaped with its wait status. Every way a worker leaves ends in
// forget_worker(), which frees what it held.
void Arbiter::worker_exited(pid_t pid, int status)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        log(LogLevel::error, "Worker (pid:{}) was sent {}!{}", pid, signal_name(sig),
            sig == SIGKILL && !workers_.at(pid).killed ? " Perhaps out of memory?" : "");
    } else if (WEXITSTATUS(status) == kWorkerBootError) {
        // As gunicorn's HaltServer: respawning a worker that can't boot would loop forever.
        request_stop({kExitBootError, true, "Worker failed to boot."});
    } else if (WEXITSTATUS(status) != 0) {
        log(LogLevel::error, "Worker (pid:{}) exited with code {}", pid, WEXITSTATUS(status));
    }
    forget_worker(pid, status);
}

// worker_lost: waitpid() failed for a worker (ECHILD: someone else reaped it). It is gone all the
// same, and what it held must still be freed.
void Arbiter::worker_lost(pid_t pid, int wait_errno)
{
    log(LogLevel::error, "waitpid({}) failed: {}", pid, std::strerror(wait_errno));
    forget_worker(pid, -1);
}

// forget_worker: `status` is the wait status, -1 when unknown. The worker's own table (its
// generation's), not the current one, is the one that knows what it held.
void Arbiter::forget_worker(pid_t pid, int status)
{
    Worker w = workers_.at(pid);
    workers_.erase(pid);
    record_death(pid, status, w.table);
    store_->remove_temp_files(pid);
    if (const auto parked = scoreboard_->steps().release_pid(pid))
        log(LogLevel::warning, "Freed {} step gate(s) of dead worker (pid:{})", parked, pid);
    scoreboard_->release(w.slot);
    if (!w.retiring && !stopping_ && !stop_request_) scoreboard_->totals().restarts.fetch_add(1);
}

// record_death: frees what a reaped worker held and, unless it exited 0 holding nothing (a worker
// retired or recycled), keeps it in the scoreboard's ring of deaths for the dashboard.
void Arbiter::record_death(pid_t pid, int status, const std::shared_ptr<LockTable>& table)
{
    WorkerDeath death{pid, monotonic_ns(), 0, status, {}, 0};
    if (status >= 0 && WIFSIGNALED(status)) {
        death.signal = WTERMSIG(status);
        death.status = 128 + death.signal;
    } else if (status >= 0) {
        death.status = WEXITSTATUS(status);
    }
    if (table) {
        for (const auto& k : table->key_stats())
            if (k.owner_pid == pid) death.held.push_back(k.key);
        death.released = table->release_owned_by(pid);
        if (death.released > 0)
            log(LogLevel::warning, "Released {} lock(s) held by dead worker (pid:{})",
                death.released, pid);
    }
    if (death.signal != 0 || death.status != 0 || !death.held.empty())
        scoreboard_->record_death(death);
}

void Arbiter::murder_workers()
{
    if (options_.timeout_s == 0) return;
    auto limit = std::int64_t{options_.timeout_s} * 1'000'000'000;
    auto now = Scoreboard::now_ns();
    // As gunicorn: SIGABRT first (the worker exits with code 1), SIGKILL if it is still there a
    // second later (stopped, or stuck where no signal handler runs).
    for (auto& [pid, w] : workers_) {
        if (w.killed || now - scoreboard_->oldest_heartbeat_ns(w.slot) <= limit) continue;
        if (w.aborted_ns == 0) {
            log(LogLevel::critical, "WORKER TIMEOUT (pid:{})", pid);
            w.aborted_ns = now;
            kill_worker(pid, SIGABRT);
        } else if (now - w.aborted_ns >= kAbortGraceNs) {
            w.killed = true;
            kill_worker(pid, SIGKILL);
        }
    }
}

void Arbiter::manage_workers()
{
    auto active = static_cast<int>(std::count_if(workers_.begin(), workers_.end(),
                                                 [](auto& w) { return !w.second.retiring; }));
    for (int i = active; i < num_workers_; ++i) spawn_worker();
    if (active > num_workers_) retire_oldest(static_cast<std::size_t>(active - num_workers_));
}

void Arbiter::retire_oldest(std::size_t count)
{
    std::vector<std::pair<std::int64_t, pid_t>> by_age;
    for (auto& [pid, w] : workers_)
        if (!w.retiring) by_age.emplace_back(w.born_ns, pid);
    std::sort(by_age.begin(), by_age.end());
    for (std::size_t i = 0; i < count && i < by_age.size(); ++i) {
        workers_[by_age[i].second].retiring = true;
        kill_worker(by_age[i].second, SIGTERM);
    }
}

void Arbiter::kill_worker(pid_t pid, int sig)
{
    if (::kill(pid, sig) != 0 && errno != ESRCH)
        log(LogLevel::error, "kill({}, {}) failed: {}", pid, signal_name(sig),
            std::strerror(errno));
}

void Arbiter::kill_workers(int sig)
{
    for (auto& [pid, w] : workers_) kill_worker(pid, sig);
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
    notifier_.send("STOPPING=1");
    stop(request.graceful);
    log(LogLevel::info, "Shutting down: Master");
    return request.exit_code;
}

void Arbiter::dispatch(int sig)
{
    if (sig != SIGCHLD) log(LogLevel::info, "Handling signal: {}", lower_name(sig));
    switch (sig) {
    case SIGCHLD: return handle_chld();
    case SIGHUP: return handle_hup();
    case SIGTERM: return handle_term();
    case SIGINT: return handle_int();
    case SIGQUIT: return handle_quit();
    case SIGTTIN: return handle_ttin();
    case SIGTTOU: return handle_ttou();
    case SIGUSR1: return handle_usr1();
    }
}

// CHLD: a worker exited: reap it, free its locks; manage_workers() respawns it.
void Arbiter::handle_chld() { reap_workers(); }

// HUP: start a fresh set of workers (in the configuration /control/config asked for, if newer),
// then stop the old ones gracefully: no request is dropped. A reload that fails its checks
// replaces nothing (reload()).
void Arbiter::handle_hup()
{
    log(LogLevel::info, "Hang up: Master");
    notifier_.reloading("Reloading");
    announce_ready_ = true; // READY=1 again once the new workers serve, or the old ones stay
    if (!reload_with_file()) return;
    std::vector<pid_t> old;
    for (auto& [pid, w] : workers_) {
        w.retiring = true;
        old.push_back(pid);
    }
    spawn_workers();
    for (pid_t pid : old) kill_worker(pid, SIGTERM);
}

// TERM: graceful stop: workers finish their in-flight requests within --graceful-timeout.
void Arbiter::handle_term() { request_stop({0, true, ""}); }

// INT: quick stop.
void Arbiter::handle_int() { request_stop({0, false, ""}); }

// QUIT: quick stop, as INT.
void Arbiter::handle_quit() { request_stop({0, false, ""}); }

// TTIN: one worker more.
void Arbiter::handle_ttin()
{
    if (num_workers_ < static_cast<int>(kMaxWorkers)) ++num_workers_;
    log(LogLevel::info, "Number of workers: {}", num_workers_);
    scoreboard_->publish_config(current_config());
    warn_lost_updates();
}

// TTOU: one worker less (the oldest goes), never below one.
void Arbiter::handle_ttou()
{
    if (num_workers_ > 1) --num_workers_;
    log(LogLevel::info, "Number of workers: {}", num_workers_);
    scoreboard_->publish_config(current_config());
}

// USR1: reopen the access log here and in every worker (after logrotate moved it).
void Arbiter::handle_usr1()
{
    reopen_access_log();
    kill_workers(SIGUSR1);
}

} // namespace forklock
