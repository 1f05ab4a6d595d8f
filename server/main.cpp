// forklock: a pre-fork HTTP server in the gunicorn model. See README.md and docs/server.md.

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "app/log.h"
#include "app/options.h"
#include "arbiter.h"

int main(int argc, char** argv)
{
    using namespace forklock;
    auto parsed = parse_options(std::vector<std::string>(argv + 1, argv + argc));
    std::fputs(parsed.out.c_str(), stdout);
    std::fputs(parsed.err.c_str(), stderr);
    if (!parsed.options) return parsed.exit_code;
    set_log_level(parsed.options->log_level);
    try {
        open_access_log(parsed.options->access_log);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "forklock: error: --access-logfile: %s\n", e.what());
        return 2;
    }
    try {
        Arbiter arbiter(*parsed.options);
        return arbiter.run();
    } catch (const std::exception& e) {
        log(LogLevel::error, "{}", e.what());
        return Arbiter::kExitStartError;
    }
}
