#include "schedule_act.h"

#include <iostream>

#include <fmt/format.h>

#include "harness/server_process.h"
#include "harness/step_replay.h"
#include "interrupt.h"

namespace forklock::demo {

int run_schedule(const Options& options)
{
    harness::ServerSpec spec;
    spec.binary = options.server;
    spec.args = {"-w", "3", "--lock-mode", options.schedule_mode};
    if (options.schedule_preload) spec.args.push_back("--preload");
    spec.workers = 3;
    spec.dir_prefix = "forklock-demo-schedule";
    spec.hooks.poll = throw_if_interrupted;
    spec.hooks.spawned = register_server_group;
    spec.hooks.reaped = unregister_server_group;
    harness::ServerProcess server(spec);
    const auto r = harness::replay_schedule(server, "k", options.schedule);
    std::cout << fmt::format("{} mode{}, 2 increments, schedule: {}\n", options.schedule_mode,
                             options.schedule_preload ? " with --preload" : "", options.schedule);
    for (const auto& why : r.blocked) std::cout << "  " << why << "\n";
    std::cout << fmt::format("ran: {}\nanswers: A {}, B {}\nfinal value: {} ({})\n", r.schedule,
                             r.statuses.at(0), r.statuses.at(1), r.final_value,
                             r.final_value == 2 ? "both updates kept"
                                                : fmt::format("{} update lost", 2 - r.final_value));
    return r.statuses == std::vector<int>{200, 200} ? 0 : 1;
}

} // namespace forklock::demo
