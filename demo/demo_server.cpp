#include "demo_server.h"

#include <csignal>

#include "interrupt.h"

namespace forklock::demo {
namespace {

using namespace std::chrono_literals;

constexpr int kGracefulTimeout = 5; // seconds, passed to the server

} // namespace

std::vector<std::string> server_args(const ServerConfig& config)
{
    std::vector<std::string> args{"-w", std::to_string(config.workers), "--threads",
                                  std::to_string(config.threads)};
    if (config.preload) args.emplace_back("--preload");
    args.insert(args.end(), {"--lock-mode", std::string(to_string(config.mode))});
    if (!config.lock_recovery) args.emplace_back("--no-lock-recovery");
    if (!config.lock_name.empty()) args.insert(args.end(), {"--lock-name", config.lock_name});
    if (config.lock_share) args.emplace_back("--lock-share");
    if (!config.lock_url.empty()) args.insert(args.end(), {"--lock-url", config.lock_url});
    if (config.lease_ms > 0)
        args.insert(args.end(), {"--lock-lease-ms", std::to_string(config.lease_ms)});
    if (config.fencing) args.emplace_back("--fencing");
    // -t 60: the crash act holds a key for 10 s; the hung-worker killer must not interfere.
    args.insert(args.end(), {"-t", "60", "--graceful-timeout", std::to_string(kGracefulTimeout),
                             "--log-level", "info"});
    return args;
}

harness::ServerHooks demo_server_hooks()
{
    harness::ServerHooks hooks;
    hooks.poll = throw_if_interrupted;
    hooks.stop_signal = [] { return interrupted() ? SIGINT : SIGTERM; };
    hooks.spawned = register_server_group;
    hooks.reaped = unregister_server_group;
    return hooks;
}

harness::ServerProcess start_server(const std::filesystem::path& binary, const ServerConfig& config,
                                    const std::filesystem::path& data_dir)
{
    harness::ServerSpec spec;
    spec.binary = binary;
    spec.data_dir = data_dir;
    spec.args = server_args(config);
    spec.workers = config.workers;
    spec.start_timeout = 15s;
    spec.stop_timeout = std::chrono::seconds(kGracefulTimeout + 3);
    spec.dir_prefix = "forklock-demo";
    spec.hooks = demo_server_hooks();
    return harness::ServerProcess(std::move(spec));
}

} // namespace forklock::demo
