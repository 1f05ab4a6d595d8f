#include "app/options.h"

#include <bit>
#include <cctype>
#include <charconv>
#include <random>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/scoreboard.h"
#include <forklock/lock_table.h>
#include "trace/trace_ring.h"

namespace forklock {
namespace {

// The modes' names from their table, joined by `sep`, then "process", the default's other name.
std::string mode_names(std::string_view sep)
{
    std::string out;
    for (const ModeFacts& m : lock_modes()) out.append(m.name).append(sep);
    return out + "process";
}

constexpr const char* kVersion = "forklock 0.1.0";

std::optional<std::uint16_t> parse_port(const std::string& text)
{
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

std::optional<LogLevel> parse_log_level(const std::string& name)
{
    if (name == "debug") return LogLevel::debug;
    if (name == "info") return LogLevel::info;
    if (name == "warning") return LogLevel::warning;
    if (name == "error") return LogLevel::error;
    if (name == "critical") return LogLevel::critical;
    return std::nullopt;
}

struct RawOptions {
    std::string bind = "127.0.0.1:8000";
    std::string lock_mode = "process";
    std::string log_level = "info";
    bool no_lock_recovery = false;
    bool no_trace = false;
    std::string pid_file;
    std::string data_dir = "forklock-data";
    std::string dashboard_controls = "loopback";
    std::string allowed_hosts;
};

void add_flags(CLI::App& app, Options& o, RawOptions& raw)
{
    app.set_version_flag("--version", kVersion);
    app.add_option("-w,--workers", o.workers, "worker processes")
        ->check(CLI::Range(1, static_cast<int>(kMaxWorkers)));
    app.add_option("--threads", o.threads, "threads (event loops) per worker")
        ->check(CLI::Range(1, static_cast<int>(kMaxThreads)));
    app.add_option("--worker-connections", o.worker_connections,
                   "connections a worker holds at once; at the cap it stops accepting")
        ->check(CLI::Range(1u, 1u << 20));
    app.add_option("-b,--bind", raw.bind, "HOST:PORT or [IPV6]:PORT; port 0 picks a free port");
    app.add_flag("--preload", o.preload, "create the lock table in the master, before fork");
    app.add_option("--lock-mode", raw.lock_mode, mode_names("|") + " (= mutex)");
    app.add_option("--lock-url", o.lock_url,
                   "postgres: the libpq connection string or URI of the database holding the "
                   "locks");
    app.add_option("--lock-name", o.lock_name,
                   "semaphore, mutex: find the lock table by NAME (/dev/shm/forklock-NAME), so "
                   "workers share it without --preload");
    app.add_flag("--lock-share", o.lock_share,
                 "with --lock-name: join a table another live server uses by that name");
    app.add_flag("--no-lock-recovery", raw.no_lock_recovery,
                 "semaphore mode: the master does not free keys of dead workers");
    app.add_option("--data-dir", raw.data_dir, "directory of counter files (created if missing)");
    app.add_option("-t,--timeout", o.timeout_s, "kill workers silent for S seconds; 0 = never")
        ->check(CLI::Range(0, 86400));
    app.add_option("--graceful-timeout", o.graceful_timeout_s,
                   "seconds workers get to finish on TERM")
        ->check(CLI::Range(0, 86400));
    app.add_option("--max-requests", o.max_requests,
                   "recycle a worker after N requests; 0 = never");
    app.add_option("--max-requests-jitter", o.max_requests_jitter,
                   "add 0..N to --max-requests per worker");
    app.add_option("-p,--pid", raw.pid_file, "write the master's pid to FILE");
    app.add_option("--access-logfile", o.access_log, "access log FILE, or - for stderr");
    app.add_option("--log-level", raw.log_level, "debug|info|warning|error|critical");
    app.add_option("--lock-slots", o.lock_slots, "keys that can be held at once")
        ->check(CLI::Range(std::size_t{1}, LockTable::kMaxCapacity));
    app.add_flag("--no-trace", raw.no_trace,
                 "record no trace of critical sections (/trace, /analysis off)");
    app.add_option("--trace-size", o.trace_size,
                   "critical sections the trace keeps, a power of two")
        ->check(CLI::Range(TraceRing::kMinCapacity, TraceRing::kMaxCapacity));
    app.add_option("--dashboard-token", o.dashboard_token,
                   "the token /control/... requests carry; default: a random one, logged");
    app.add_option("--dashboard-controls", raw.dashboard_controls,
                   "loopback (the page served to a loopback peer carries the token) | token "
                   "(open the page with ?token=) | off");
    app.add_option("--allowed-hosts", raw.allowed_hosts,
                   "NAME,...: Host names answered besides localhost, 127.x and [::1]; * = any "
                   "(default: loopback names only when bound to loopback, else any)");
    app.add_option("--header-timeout", o.header_timeout_s,
                   "seconds a request head may take to arrive (408, close); default 10")
        ->check(CLI::Range(0.001, 3600.0));
    app.add_option("--body-timeout", o.body_timeout_s,
                   "seconds a request body may stall between reads (408, close); default 10")
        ->check(CLI::Range(0.001, 3600.0));
    app.add_option("--keepalive-timeout", o.keepalive_timeout_s,
                   "seconds an idle keep-alive connection stays open; 0 = no keep-alive; "
                   "default 75")
        ->check(CLI::Range(0.0, 3600.0));
}

std::string lock_name_problem(const Options& o)
{
    if (o.lock_share && o.lock_name.empty()) return "--lock-share: only with --lock-name";
    if (o.lock_name.empty()) return "";
    if (auto problem = LockTable::name_problem(o.lock_name); !problem.empty())
        return fmt::format("--lock-name: {}", problem);
    if (facts(o.lock_mode).private_memory)
        return fmt::format("--lock-name: a {} table lives in each process's private memory and "
                           "cannot be found by name (use semaphore or mutex)",
                           to_string(o.lock_mode));
    return "";
}

// Values CLI11 can't check alone. Returns the error message, or "" when all is well.
std::string finish(Options& o, const RawOptions& raw)
{
    auto bind = parse_bind(raw.bind);
    if (!bind) return fmt::format("--bind: '{}' is not HOST:PORT or [IPV6]:PORT", raw.bind);
    o.bind = *bind;
    auto mode = parse_lock_mode(raw.lock_mode);
    if (!mode)
        return fmt::format("--lock-mode: '{}' is not one of {}", raw.lock_mode, mode_names(", "));
    o.lock_mode = *mode;
    auto level = parse_log_level(raw.log_level);
    if (!level)
        return fmt::format("--log-level: '{}' is not one of debug, info, warning, error, critical",
                           raw.log_level);
    o.log_level = *level;
    if (raw.data_dir.empty()) return "--data-dir: the directory name is empty";
    o.data_dir = raw.data_dir;
    o.pid_file = raw.pid_file;
    o.lock_recovery = !raw.no_lock_recovery;
    o.trace = !raw.no_trace;
    if (!std::has_single_bit(o.trace_size))
        return fmt::format("--trace-size: {} is not a power of two", o.trace_size);
    auto controls = parse_dashboard_controls(raw.dashboard_controls);
    if (!controls)
        return fmt::format("--dashboard-controls: '{}' is not one of loopback, token, off",
                           raw.dashboard_controls);
    o.dashboard_controls = *controls;
    auto hosts = parse_allowed_hosts(raw.allowed_hosts);
    if (!hosts)
        return fmt::format("--allowed-hosts: '{}' is not a comma-separated list of host names "
                           "without ports, or *",
                           raw.allowed_hosts);
    o.allowed_hosts = *hosts;
    return config_error(o);
}

} // namespace

std::optional<DashboardControls> parse_dashboard_controls(std::string_view name)
{
    if (name == "loopback") return DashboardControls::loopback;
    if (name == "token") return DashboardControls::token;
    if (name == "off") return DashboardControls::off;
    return std::nullopt;
}

const char* to_string(DashboardControls controls) noexcept
{
    switch (controls) {
    case DashboardControls::loopback: return "loopback";
    case DashboardControls::token: return "token";
    case DashboardControls::off: return "off";
    }
    return "?";
}

std::string config_error(const Options& o)
{
    if (auto problem = lock_name_problem(o); !problem.empty()) return problem;
    if (facts(o.lock_mode).needs_url && o.lock_url.empty())
        return "--lock-mode postgres: needs --lock-url URL (a libpq connection string)";
    if (!facts(o.lock_mode).needs_url && !o.lock_url.empty())
        return "--lock-url: only with --lock-mode postgres";
    if (o.lock_mode == LockMode::semaphore && o.lock_slots > LockTable::kMaxSemaphoreCapacity)
        return fmt::format("--lock-slots: at most {} in semaphore mode (one mapping per semaphore)",
                           LockTable::kMaxSemaphoreCapacity);
    return "";
}

std::string make_dashboard_token()
{
    std::random_device random;
    std::string token;
    for (int i = 0; i < 4; ++i) token += fmt::format("{:08x}", random());
    return token;
}

std::optional<std::vector<std::string>> parse_allowed_hosts(std::string_view text)
{
    std::vector<std::string> names;
    while (!text.empty()) {
        const std::size_t comma = text.find(',');
        std::string_view name = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
        while (name.starts_with(' ')) name.remove_prefix(1);
        while (name.ends_with(' ')) name.remove_suffix(1);
        if (name.size() > 2 && name.starts_with('[') && name.ends_with(']'))
            name = name.substr(1, name.size() - 2);
        else if (name.find_first_of(":/[]") != std::string_view::npos)
            return std::nullopt;
        if (name.empty()) return std::nullopt;
        std::string lowered(name);
        for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        names.push_back(std::move(lowered));
    }
    return names;
}

std::optional<BindAddress> parse_bind(const std::string& text)
{
    BindAddress a;
    std::string port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string::npos || close == 1) return std::nullopt;
        a.host = text.substr(1, close - 1);
        if (close + 1 == text.size()) return a;
        if (text[close + 1] != ':') return std::nullopt;
        port = text.substr(close + 2);
    } else {
        auto colon = text.find(':');
        if (colon != text.rfind(':')) return std::nullopt; // bare IPv6 needs brackets
        a.host = text.substr(0, colon);
        if (colon == std::string::npos) return a.host.empty() ? std::nullopt : std::optional(a);
        port = text.substr(colon + 1);
    }
    auto p = parse_port(port);
    if (!p || a.host.empty()) return std::nullopt;
    a.port = *p;
    return a;
}

std::string bind_url(const BindAddress& a)
{
    bool v6 = a.host.find(':') != std::string::npos;
    return v6 ? fmt::format("http://[{}]:{}", a.host, a.port)
              : fmt::format("http://{}:{}", a.host, a.port);
}

ParseResult parse_options(const std::vector<std::string>& args)
{
    CLI::App app{"forklock: a pre-fork HTTP server that counts, under a lock per key", "forklock"};
    Options o;
    RawOptions raw;
    add_flags(app, o, raw);
    std::vector<std::string> reversed(args.rbegin(), args.rend()); // CLI11 pops from the back
    ParseResult result;
    try {
        app.parse(reversed);
    } catch (const CLI::ParseError& e) {
        std::ostringstream out, err;
        result.exit_code = app.exit(e, out, err);
        if (result.exit_code != 0) result.exit_code = 2;
        result.out = out.str();
        result.err = err.str();
        return result;
    }
    if (auto problem = finish(o, raw); !problem.empty()) {
        result.exit_code = 2;
        result.err =
            fmt::format("forklock: error: {}\nRun with --help for more information.\n", problem);
        return result;
    }
    result.options = o;
    return result;
}

std::vector<std::string> lost_update_warnings(const Options& o)
{
    std::vector<std::string> out;
    const ModeFacts& mode = facts(o.lock_mode);
    if (!mode.excludes) {
        out.push_back("--lock-mode none: increments take no lock, concurrent requests overwrite "
                      "each other's updates");
    } else if (mode.private_memory) {
        if (!serializes_increments(o.lock_mode, o.preload, o.workers, o.threads))
            out.push_back(fmt::format(
                "--lock-mode thread with {} workers: each worker has its own copy of the "
                "std::mutexes after fork, so workers overwrite each other's updates",
                o.workers));
    } else if (!mode.shared_without_preload) {
        if (!serializes_increments(o.lock_mode, o.preload, o.workers, o.threads,
                                   !o.lock_name.empty()))
            out.push_back(fmt::format(
                "--lock-mode {} without --preload: each of the {} workers creates its own lock "
                "table after fork, so workers overwrite each other's updates (add --preload or "
                "--lock-name NAME)",
                to_string(o.lock_mode), o.workers));
    }
    return out;
}

} // namespace forklock
