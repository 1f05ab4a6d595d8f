// The Arbiter's binary upgrade (arbiter.h), nginx's "upgrading executable on the fly":
//   USR2   start the binary again (upgrade.h) as a new master on this master's socket; the pid file
//          becomes PIDFILE.oldbin, the new master writes PIDFILE. Both serve.
//   WINCH  once the new master serves: stop this master's workers gracefully.
//   QUIT   (or TERM) this master exits; the new one serves on.
//   HUP    (a rollback, after WINCH) this master starts its workers again; then QUIT the new one.
// A new master that exits, or does not serve within --timeout (30 s without one), leaves this one
// serving: PIDFILE.oldbin is renamed back, and workers stopped by WINCH start again.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "app/log.h"
#include "arbiter.h"
#include "signal_queue.h"
#include "worker.h"

namespace forklock {
namespace {

constexpr std::chrono::seconds kDefaultReadyTimeout{30}; // with --timeout 0

std::string exit_text(int status)
{
    if (WIFSIGNALED(status)) return "was killed by " + signal_name(WTERMSIG(status));
    return "exited with code " + std::to_string(WEXITSTATUS(status));
}

std::filesystem::path oldbin(const std::filesystem::path& pid_file)
{
    return pid_file.string() + ".oldbin";
}

} // namespace

// upgrade_refusal: why a USR2 cannot start a new master now ("" when it can).
std::string Arbiter::upgrade_refusal() const
{
    if (upgrade_)
        return fmt::format("an upgrade is already running (new master pid:{}): WINCH and QUIT "
                           "this master, or QUIT that one, first",
                           upgrade_->pid);
    if (startup_.upgrade && ::getppid() == startup_.upgrade->old_master)
        return fmt::format("the master this one replaces (pid:{}) still runs: QUIT it first",
                           startup_.upgrade->old_master);
    if (startup_.binary.empty()) return "the path of this binary is unknown (no argv[0], no /proc)";
    const LockTableOptions o = lock_table_options(options_);
    if (options_.preload && facts(o.mode).can_be_named && o.name.empty())
        return fmt::format("the {} lock table is anonymous (--preload without --lock-name): a new "
                           "master cannot join it, and its workers would lock apart from this "
                           "master's. To upgrade, restart with --lock-name NAME",
                           to_string(o.mode));
    return "";
}

// USR2: the new master. Nothing changes here until it serves (watch_upgrade).
void Arbiter::handle_usr2()
{
    if (const std::string why = upgrade_refusal(); !why.empty())
        return log(LogLevel::error, "USR2 ignored: {}", why);
    const std::filesystem::path pid_file = pid_file_;
    if (!pid_file.empty() && !move_pid_file(oldbin(pid_file)))
        return log(LogLevel::error, "USR2 ignored: the pid file cannot become .oldbin");
    try {
        NewMaster m =
            start_new_master(startup_.binary, startup_.args, listener_->fd(), notifier_.variable());
        const auto limit = options_.timeout_s > 0 ? std::chrono::seconds(options_.timeout_s)
                                                  : kDefaultReadyTimeout;
        upgrade_ = Upgrade{m.pid, std::move(m.ready), std::chrono::steady_clock::now() + limit};
    } catch (const std::exception& e) {
        if (!pid_file.empty()) (void)move_pid_file(pid_file);
        return log(LogLevel::error, "Upgrade failed: {}; this master serves on", e.what());
    }
    log(LogLevel::info, "Upgrade: started {} as the new master (pid:{}); this master serves on",
        startup_.binary.string(), upgrade_->pid);
}

// WINCH: once the new master serves, this master's workers stop gracefully (manage_workers keeps
// none); a WINCH that comes before (nginx's procedure sends it right after USR2) waits for that.
// Not without a new master: a terminal's resize also sends WINCH, and nobody would be serving.
void Arbiter::handle_winch()
{
    if (!upgrade_)
        return log(LogLevel::warning, "WINCH ignored: no new master runs (USR2 starts one)");
    if (!upgrade_->serving) {
        upgrade_->winch_due = true;
        return log(LogLevel::info,
                   "Upgrade: this master's workers stop once the new master (pid:{}) serves",
                   upgrade_->pid);
    }
    winched_ = true;
    log(LogLevel::info,
        "Upgrade: stopping this master's workers gracefully; QUIT this master to finish, HUP it "
        "to roll back");
}

// watch_upgrade: on every turn of run()'s loop while a new master has not served yet.
void Arbiter::watch_upgrade()
{
    if (!upgrade_ || upgrade_->serving || upgrade_->killed) return;
    char byte = 0;
    if (::read(upgrade_->ready.get(), &byte, 1) == 1) {
        upgrade_->serving = true;
        upgrade_->ready.reset();
        notifier_.hand_over(); // the new master told systemd MAINPID= itself
        log(LogLevel::info,
            "Upgrade: the new master (pid:{}) serves; WINCH stops this master's workers, then "
            "QUIT this master",
            upgrade_->pid);
        if (upgrade_->winch_due) handle_winch();
        return;
    }
    if (std::chrono::steady_clock::now() < upgrade_->deadline) return;
    upgrade_->killed = true; // upgrade_exited() reports it once it is reaped
    log(LogLevel::error,
        "Upgrade failed: the new master (pid:{}) did not serve within --timeout; killing it, "
        "this master serves on",
        upgrade_->pid);
    kill_worker(upgrade_->pid, SIGKILL); // its workers follow it (PR_SET_PDEATHSIG)
}

// upgrade_exited: the new master is gone (reaped by reap_workers): this master is the one that
// serves again, and says so to systemd once its workers do (announce_ready).
void Arbiter::upgrade_exited(int status)
{
    const pid_t pid = upgrade_->pid;
    const bool served = upgrade_->serving, killed = upgrade_->killed;
    upgrade_.reset();
    if (served)
        log(LogLevel::info, "Upgrade rolled back: the new master (pid:{}) {}; this master serves",
            pid, exit_text(status));
    else if (!killed) // when killed, watch_upgrade() said why
        log(LogLevel::error,
            "Upgrade failed: the new master (pid:{}) {} before it served; this master serves on",
            pid, exit_text(status));
    if (!pid_file_.empty()) (void)move_pid_file(options_.pid_file);
    winched_ = false; // manage_workers() starts this master's workers again
    announce_ready_ = true;
}

// upgrade_ready: in a new master, when every worker serves: tell the old one.
void Arbiter::upgrade_ready()
{
    if (!startup_.upgrade->ready) return;
    const char byte = 1;
    if (::write(startup_.upgrade->ready.get(), &byte, 1) != 1)
        log(LogLevel::warning, "Upgrade: could not tell the old master this one serves: {}",
            std::strerror(errno));
    startup_.upgrade->ready.reset();
    log(LogLevel::info,
        "Upgrade: every worker serves; the old master (pid:{}) serves on until WINCH and QUIT",
        startup_.upgrade->old_master);
}

// move_pid_file: PIDFILE to PIDFILE.oldbin and back. False (logged) when the rename failed: the
// pid is still where pid_file_ says.
bool Arbiter::move_pid_file(const std::filesystem::path& to)
{
    std::error_code error;
    std::filesystem::rename(pid_file_, to, error);
    if (error) {
        log(LogLevel::error, "rename({}, {}) failed: {}", pid_file_.string(), to.string(),
            error.message());
        return false;
    }
    pid_file_ = to;
    return true;
}

} // namespace forklock
