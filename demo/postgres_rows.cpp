#include "postgres_rows.h"

#include <memory>

#include <fmt/format.h>

#include "harness/pg_cluster.h"
#include "interrupt.h"

namespace forklock::demo {
namespace {

// The rows' servers for a cluster at `url`. Two servers as Act 3's other rows; the holder rows
// as Act 2's (-w 2 --threads 2) with --preload, so that every worker's /locks and 503s name the
// key's owner (the postgres mode's slots are shared only when made before fork).
struct PostgresConfigs {
    ServerConfig two_servers;
    ServerConfig holder;
};

PostgresConfigs postgres_configs(const RaceSizes& sizes, const std::string& url)
{
    const int w = std::max(2, sizes.workers / 2);
    PostgresConfigs configs{{LockMode::postgres, false, w, 1, true},
                            {LockMode::postgres, true, 2, 2, true}};
    configs.two_servers.lock_url = url;
    configs.holder.lock_url = url;
    return configs;
}

std::string label(int row, int rows, const ServerConfig& config, const char* what)
{
    return fmt::format("act 3 [{}/{}] {}{}:", row, rows, describe(config), what);
}

// Every row inconclusive with the cluster's error: nothing was measured.
PostgresRows failed_rows(const RaceSizes& sizes, const std::string& error)
{
    const PostgresConfigs configs = postgres_configs(sizes, "");
    PostgresRows rows;
    TwoServerRow two;
    two.config = configs.two_servers;
    two.error = two.judgement.note = "PostgreSQL did not start: " + error;
    rows.two_servers.push_back(two);
    CrashRow crash;
    crash.config = configs.holder;
    crash.note = two.error;
    rows.crash.push_back(crash);
    PauseRow pause;
    pause.config = configs.holder;
    pause.note = two.error;
    rows.pause.push_back(pause);
    return rows;
}

const char* const kNotInstalled = "PostgreSQL 15 is not installed (no initdb in "
                                 "/usr/lib/postgresql/15/bin; apt-get install postgresql-15)";

// A throwaway cluster, or nullptr with `error` set when it did not start.
std::unique_ptr<harness::PgCluster> start_cluster(std::string& error)
{
    try {
        return std::make_unique<harness::PgCluster>();
    } catch (const std::exception& e) {
        throw_if_interrupted(); // a Ctrl-C from the terminal reaches initdb and postgres too
        error = e.what();
        return nullptr;
    }
}

} // namespace

PostgresRows run_postgres_rows(const std::filesystem::path& server, const RaceSizes& sizes,
                               Progress& progress, int first_row, int rows)
{
    if (!harness::PgCluster::available()) return {kNotInstalled, {}, {}, {}};
    progress.show(fmt::format("act 3 [{}/{}] starting PostgreSQL", first_row, rows));
    std::string error;
    const auto cluster = start_cluster(error);
    if (!cluster) return failed_rows(sizes, error);
    const PostgresConfigs configs = postgres_configs(sizes, cluster->conninfo());
    PostgresRows out;
    out.two_servers.push_back(run_two_servers(server, configs.two_servers, sizes, progress,
                                              label(first_row, rows, configs.two_servers, "")));
    out.crash.push_back(run_crash(server, configs.holder, progress,
                                  label(first_row + 1, rows, configs.holder, ", kill -9")));
    out.pause.push_back(run_pause(server, configs.holder, progress,
                                  label(first_row + 2, rows, configs.holder, ", kill -STOP")));
    return out;
}

PostgresRows run_postgres_pause(const std::filesystem::path& server, Progress& progress,
                                const std::string& prefix)
{
    if (!harness::PgCluster::available()) return {kNotInstalled, {}, {}, {}};
    progress.show(fmt::format("{} starting PostgreSQL", prefix));
    std::string error;
    const auto cluster = start_cluster(error);
    PostgresRows out;
    if (!cluster) {
        out.pause = failed_rows(RaceSizes{}, error).pause;
        return out;
    }
    const ServerConfig holder = postgres_configs(RaceSizes{}, cluster->conninfo()).holder;
    out.pause.push_back(run_pause(server, holder, progress,
                                  fmt::format("{} {}, kill -STOP:", prefix, describe(holder))));
    return out;
}

} // namespace forklock::demo
