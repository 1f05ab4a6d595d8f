// The Arbiter's workers (arbiter.h), with gunicorn's names: spawn_worker(s), reap_workers,
// murder_workers (the ones past --timeout), manage_workers (as many as asked), kill_worker(s).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "app/log.h"
#include "arbiter.h"
#include "os/monotonic_clock.h"
#include "signal_queue.h"
#include "worker.h"

namespace forklock {
namespace {

constexpr std::int64_t kAbortGraceNs = 1'000'000'000; // SIGABRT, then SIGKILL this much later

} // namespace

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
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (workers_.count(pid)) worker_exited(pid, status);
        if (upgrade_ && pid == upgrade_->pid) upgrade_exited(status);
    }
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
    const int wanted = winched_ ? 0 : num_workers_; // after WINCH the new master serves
    for (int i = active; i < wanted; ++i) spawn_worker();
    if (active > wanted) retire_oldest(static_cast<std::size_t>(active - wanted));
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

} // namespace forklock
