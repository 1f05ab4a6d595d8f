// The Arbiter's signals (arbiter.h): dispatch() and one handler per signal, as gunicorn's
// handle_* methods. The handlers only decide; run() acts on a stop request.

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "app/log.h"
#include "arbiter.h"

namespace forklock {
namespace {

std::string lower_name(int sig)
{
    std::string name = ::sigabbrev_np(sig) ? ::sigabbrev_np(sig) : "?";
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return name;
}

} // namespace

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
    case SIGUSR2: return handle_usr2();
    case SIGWINCH: return handle_winch();
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
    if (winched_) { // a rollback: this master serves again, and speaks for the service
        winched_ = false;
        log(LogLevel::info,
            "Upgrade: starting this master's workers again; QUIT the new master "
            "(pid:{}) to roll back",
            upgrade_ ? upgrade_->pid : 0);
    }
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
