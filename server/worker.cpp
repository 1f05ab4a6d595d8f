#include "worker.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <memory>
#include <thread>
#include <vector>

#include "app/api.h"
#include "app/counter_store.h"
#include "app/log.h"
#include "http_adapter.h"
#include "os/os_error.h"
#include "signal_queue.h"

namespace forklock {
namespace {

// Descriptors a worker needs besides its connections: logs, the listener and its dups, epoll,
// lock files, counter files being written.
constexpr rlim_t kReservedDescriptors = 32;
ConnectionTimeouts connection_timeouts(const Options& o)
{
    auto ms = [](double s) { return std::chrono::milliseconds(static_cast<long>(s * 1000)); };
    return {ms(o.header_timeout_s), ms(o.body_timeout_s), ms(o.keepalive_timeout_s),
            ConnectionTimeouts{}.linger};
}

volatile std::sig_atomic_t g_term = 0;
volatile std::sig_atomic_t g_reopen = 0;

extern "C" void on_term(int) { g_term = 1; }
extern "C" void on_usr1(int) { g_reopen = 1; }
// INT and QUIT mean "quick": a worker may be blocked for a minute in hold_ms or on a lock, so the
// handler exits itself rather than queueing; _exit is async-signal-safe and the master releases
// whatever locks we held after it reaps us.
extern "C" void on_quick(int) { ::_exit(kWorkerExitOk); }

// SIGABRT from the master means "you missed --timeout" (gunicorn's handle_abort): leave at once,
// exit code 1, no core file. An abort() of our own (a failed assertion, std::terminate) keeps
// its default action and its core dump.
extern "C" void on_abort(int sig, siginfo_t* info, void*)
{
    if (info->si_code == SI_USER && info->si_pid == ::getppid()) {
        static const char kMsg[] =
            "[forklock worker] aborted by the master: no heartbeat within --timeout\n";
        (void)!::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
        ::_exit(1);
    }
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

// Like nginx's "worker_connections exceed open file resource limit": the cap can't be reached,
// and accept() will fail with EMFILE first (the loops then back off, see http_adapter.h).
void warn_if_descriptors_short(const Options& options)
{
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return;
    if (options.worker_connections + kReservedDescriptors <= limit.rlim_cur) return;
    log(LogLevel::warning,
        "--worker-connections {} exceeds the open file limit ({}, ulimit -n) less {} kept for "
        "the worker itself",
        options.worker_connections, limit.rlim_cur, kReservedDescriptors);
}

class Worker final {
public:
    explicit Worker(const WorkerSpec& spec);
    void run();

private:
    LockTable& table();
    bool should_stop();
    void housekeeping();
    WorkerSlot& slot() { return spec_.scoreboard->slot(spec_.slot); }

    WorkerSpec spec_;
    std::unique_ptr<LockTable> own_table_;
    CounterStore store_;
    Api api_;
    WorkerShared shared_;
    std::vector<std::unique_ptr<HttpLoop>> loops_;
    std::atomic<bool> stop_logged_{false};
};

Worker::Worker(const WorkerSpec& spec)
    : spec_(spec), store_(spec.options->data_dir),
      api_(ApiContext{&table(), &store_, spec.scoreboard, ::getpid(), spec.trace, spec.metrics,
                      spec.options, spec.listen_fd})
{
    store_.check_writable();
    shared_.api = &api_;
    shared_.scoreboard = spec_.scoreboard;
    shared_.slot = spec_.slot;
    shared_.max_connections = spec_.options->worker_connections;
    warn_if_descriptors_short(*spec_.options);
    shared_.should_stop = [this] { return should_stop(); };
    shared_.housekeeping = [this] { housekeeping(); };
    shared_.timeouts = connection_timeouts(*spec_.options);
    shared_.drain_limit = std::chrono::seconds(spec_.options->graceful_timeout_s);
    for (int t = 0; t < spec_.options->threads; ++t)
        loops_.push_back(
            std::make_unique<HttpLoop>(spec_.listen_fd, static_cast<std::size_t>(t), shared_));
    set_step_claim_hook([this] { wake_loops(shared_); });
}

// Called from the member initialiser list: the table must exist before api_ is built.
LockTable& Worker::table()
{
    if (spec_.preloaded_table != nullptr) return *spec_.preloaded_table;
    if (!own_table_) {
        LockTableOptions o = lock_table_options(*spec_.options);
        o.share = true; // a named table: the master opened it before fork, and refused or shared
        own_table_ = std::make_unique<LockTable>(o);
        own_table_->raise_token_floor(spec_.options->token_floor);
    }
    return *own_table_;
}

void Worker::run()
{
    const Options& o = *spec_.options;
    slot().pid = ::getpid();
    slot().config =
        ServerConfig{spec_.generation, o.lock_mode, o.preload, o.workers, o.threads}.pack();
    slot().state = static_cast<std::uint32_t>(WorkerState::idle);
    std::vector<std::thread> threads;
    for (std::size_t t = 1; t < loops_.size(); ++t)
        threads.emplace_back([this, t] { loops_[t]->run(); });
    loops_[0]->run();
    for (auto& t : threads) t.join();
    loops_.clear();
}

bool Worker::should_stop()
{
    bool parent_gone = ::getppid() != spec_.master_pid;
    bool recycle = spec_.max_requests > 0 &&
                   shared_.requests.load(std::memory_order_relaxed) >= spec_.max_requests;
    if (!(g_term || parent_gone || recycle)) return false;
    if (!stop_logged_.exchange(true)) {
        slot().state = static_cast<std::uint32_t>(WorkerState::stopping);
        if (parent_gone)
            log(LogLevel::info, "Parent changed, shutting down: {}", ::getpid());
        else if (recycle)
            log(LogLevel::info, "Autorestarting worker after current request.");
        else
            log(LogLevel::info, "Worker stopping (pid: {}): answering its open connections",
                ::getpid());
    }
    return true;
}

void Worker::housekeeping()
{
    if (g_reopen) {
        g_reopen = 0;
        reopen_access_log();
    }
}

void boot_signals(const WorkerSpec& spec)
{
    if (spec.master_signals != nullptr) spec.master_signals->detach_in_child();
    set_handler(SIGTERM, on_term);
    set_handler(SIGUSR1, on_usr1);
    set_handler(SIGINT, on_quick);
    set_handler(SIGQUIT, on_quick);
    set_handler(SIGABRT, on_abort);
    for (int sig : {SIGHUP, SIGTTIN, SIGTTOU, SIGPIPE, SIGUSR2, SIGWINCH}) ::signal(sig, SIG_IGN);
    ::signal(SIGCHLD, SIG_DFL);
    // The master may die without a chance to tell us (kill -9): the kernel sends TERM instead.
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        throw os_error(errno, "prctl(PR_SET_PDEATHSIG, SIGTERM)");
    // The master died before prctl() could arm that: nobody would ever send it.
    if (::getppid() != spec.master_pid) ::_exit(0);
    // The master blocked every signal around fork(); our handlers are in place now.
    sigset_t none;
    ::sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
}

} // namespace

std::filesystem::path lock_dir_for(const std::filesystem::path& data_dir)
{
    return data_dir / ".locks";
}

LockTableOptions lock_table_options(const Options& o)
{
    LockTableOptions t;
    t.mode = o.lock_mode;
    t.capacity = o.lock_slots;
    t.recover_dead_owners = o.lock_recovery;
    t.lock_dir = lock_dir_for(o.data_dir);
    t.url = o.lock_url;
    t.lease_ms = o.lock_lease_ms;
    if (facts(o.lock_mode).can_be_named) {
        t.name = o.lock_name; // flock: the kernel shares lock files by path, a name adds nothing
        t.share = o.lock_share;
    }
    return t;
}

void run_worker(const WorkerSpec& spec)
{
    std::unique_ptr<Worker> worker;
    try {
        boot_signals(spec);
        log(LogLevel::info, "Booting worker with pid: {}", ::getpid());
        worker = std::make_unique<Worker>(spec);
    } catch (const std::exception& e) {
        log(LogLevel::error, "Worker failed to boot: {}", e.what());
        ::_exit(kWorkerBootError);
    }
    try {
        worker->run();
    } catch (const std::exception& e) {
        log(LogLevel::error, "Exception in worker process: {}", e.what());
        ::_exit(1);
    }
    log(LogLevel::info, "Worker exiting (pid: {})", ::getpid());
    ::_exit(kWorkerExitOk);
}

} // namespace forklock
