// forklock: a pre-fork HTTP server in the gunicorn model. See README.md and docs/server.md.

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "app/log.h"
#include "app/options.h"
#include "arbiter.h"
#include "config_check.h"
#include "systemd.h"
#include "upgrade.h"

int main(int argc, char** argv)
{
    using namespace forklock;
    const std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = parse_options(args);
    std::fputs(parsed.out.c_str(), stdout);
    std::fputs(parsed.err.c_str(), stderr);
    if (!parsed.options) return parsed.exit_code;
    Startup startup;
    startup.upgrade = take_upgrade_handoff(); // before any exit: the variable is not passed on
    try {
        startup.listen_socket = take_listen_socket();
    } catch (const SocketActivationError& e) {
        std::fprintf(stderr, "forklock: error: %s\n", e.what());
        return 2;
    }
    if (parsed.action == Action::check_config)
        return check_config(*parsed.options, startup.listen_socket.has_value());
    set_log_level(parsed.options->log_level);
    try {
        open_access_log(parsed.options->access_log);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "forklock: error: --access-logfile: %s\n", e.what());
        return 2;
    }
    startup.config_file = parsed.config_file;
    startup.args = args;
    startup.settings = parsed.settings;
    startup.binary = own_binary(argv[0]);
    try {
        Arbiter arbiter(*parsed.options, std::move(startup));
        return arbiter.run();
    } catch (const std::exception& e) {
        log(LogLevel::error, "{}", e.what());
        return Arbiter::kExitStartError;
    }
}
