#include "config_check.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>

#include <fmt/format.h>

#include "listener.h"
#include "forklock/lock_table.h"
#include "worker.h"

namespace forklock {
namespace {

// writable: "" when `path` can be written: it exists and is writable, or its nearest existing
// parent is a directory this process may create entries in.
std::string writable(const std::filesystem::path& path, std::string_view flag)
{
    std::error_code ec;
    std::filesystem::path at = path;
    while (!at.empty() && !std::filesystem::exists(at, ec)) at = at.parent_path();
    if (at.empty()) at = ".";
    const bool dir = std::filesystem::is_directory(at, ec);
    if (at != path && !dir)
        return fmt::format("{} {}: {} is not a directory", flag, path.string(), at.string());
    if (::access(at.c_str(), dir ? W_OK | X_OK : W_OK) != 0)
        return fmt::format("{} {}: {} cannot be written: {}", flag, path.string(), at.string(),
                           std::strerror(errno));
    return "";
}

std::string probe_files(const Options& o)
{
    if (auto problem = writable(o.data_dir, "--data-dir"); !problem.empty()) return problem;
    if (!o.pid_file.empty())
        if (auto problem = writable(o.pid_file, "--pid"); !problem.empty()) return problem;
    if (!o.access_log.empty() && o.access_log != "-")
        return writable(o.access_log, "--access-logfile");
    return "";
}

// probe_table: the lock table made and dropped. flock mode's table is files in the data
// directory, which probe_files() checked; making it would need the directory it may not have.
std::string probe_table(const Options& o)
{
    if (o.lock_mode == LockMode::flock) return "";
    try {
        LockTable table(lock_table_options(o));
    } catch (const LockServerError& e) {
        return fmt::format("--lock-url: {}", e.what());
    } catch (const std::exception& e) {
        return fmt::format("--lock-mode {}: {}", to_string(o.lock_mode), e.what());
    }
    return "";
}

std::string probe(const Options& o, bool inherited)
{
    if (!inherited) {
        try {
            Listener listener(o.bind); // closed again at once
        } catch (const std::exception& e) {
            return fmt::format("--bind: {}", e.what());
        }
    }
    if (auto problem = probe_files(o); !problem.empty()) return problem;
    return probe_table(o);
}

} // namespace

int check_config(const Options& options, bool inherited)
{
    const std::string problem = probe(options, inherited);
    if (problem.empty()) {
        std::fputs("configuration ok\n", stdout);
        return 0;
    }
    std::fprintf(stderr, "forklock: error: %s\n", problem.c_str());
    return 2;
}

} // namespace forklock
