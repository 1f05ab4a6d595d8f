// The Arbiter's dealings with operators' tools (arbiter.h): the config file a HUP reads again,
// the socket systemd may have passed, and the notifications systemd's Type=notify waits for.

#include <fmt/format.h>

#include "app/config_file.h"
#include "app/log.h"
#include "arbiter.h"

namespace forklock {
namespace {

std::string one_line(std::string text)
{
    constexpr std::string_view kPrefix = "forklock: error: ";
    if (text.starts_with(kPrefix)) text.erase(0, kPrefix.size());
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

} // namespace

// reread_config_file: with -c FILE, the HUP's first step, as nginx's and gunicorn's: the same
// command line and the file as it is now. A file that fails to load changes nothing (nginx's
// rule): logged, and the HUP replaces no worker. Otherwise the keys the file changed are applied
// (config_file.h's plan): lock mode, preload, workers and threads as a /control/config request
// would ask, so reload() checks them and makes the new table; keys only a restart can change,
// the bind address first, keep their running value and are logged.
bool Arbiter::reread_config_file()
{
    if (startup_.config_file.empty()) return true;
    const ParseResult fresh = parse_options(startup_.args);
    if (!fresh.options) {
        log(LogLevel::error,
            "Config file not reloaded; the running configuration and its "
            "workers are kept: {}",
            one_line(fresh.err));
        return false;
    }
    ReloadPlan plan = plan_reload(options_, startup_.settings, fresh);
    for (const auto& what : plan.need_restart)
        log(LogLevel::warning,
            "Config file: {}: a HUP cannot change it (the socket stays bound, "
            "the table and files stay open); restart to apply. Kept as it runs",
            what);
    for (const auto& what : plan.applied) log(LogLevel::info, "Config file: {}", what);
    options_ = std::move(plan.next);
    set_log_level(options_.log_level);
    if (plan.change) scoreboard_->request_config(*plan.change);
    startup_.settings = std::move(plan.settings);
    return true;
}

// reload_with_file: a HUP's checks: the config file read again (if any), then reload()'s. When
// reload() refuses what results, the file's changes are undone with it, so that the running
// options are the ones the running workers have and the next HUP tries the file again.
bool Arbiter::reload_with_file()
{
    const Options before = options_;
    const std::vector<Setting> loaded = startup_.settings;
    if (!reread_config_file()) return false;
    if (reload()) return true;
    options_ = before;
    startup_.settings = loaded;
    set_log_level(options_.log_level);
    return false;
}

// listen: the socket systemd passed (main() checked it is a listening TCP socket), else bind.
void Arbiter::listen()
{
    if (!startup_.listen_socket) return static_cast<void>(listener_.emplace(options_.bind));
    const int fd = startup_.listen_socket->get();
    listener_.emplace(std::move(*startup_.listen_socket));
    startup_.listen_socket.reset();
    if (startup_.upgrade)
        return log(LogLevel::info, "Upgrade: serving fd {} of the old master (pid:{})", fd,
                   startup_.upgrade->old_master);
    log(LogLevel::info, "Socket activation: serving fd {} from systemd; --bind {} is not bound", fd,
        bind_url(options_.bind));
}

// announce_ready: READY=1 once, after a start or a HUP, when every worker the master keeps
// (not the retiring ones) serves: a worker writes its configuration to its slot only then. With
// MAINPID=, a master that had handed over (or not yet taken over) across an upgrade speaks for the
// service again; a new master started by USR2 also tells the old one it serves.
void Arbiter::announce_ready()
{
    if (!announce_ready_) return;
    int serving = 0;
    for (const auto& [pid, w] : workers_)
        if (!w.retiring && scoreboard_->slot(w.slot).config.load() != 0) ++serving;
    if (serving < num_workers_) return;
    announce_ready_ = false;
    if (startup_.upgrade) upgrade_ready();
    notifier_.take_over(fmt::format("READY=1\nSTATUS=Serving {} worker(s) at {}\nMAINPID={}",
                                    serving, bind_url(listener_->address()), pid_));
}

} // namespace forklock
