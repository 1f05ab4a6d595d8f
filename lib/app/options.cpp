#include "app/options.h"

#include <bit>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/config_file.h"
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

struct RawOptions {
    std::string bind = "127.0.0.1:8000";
    std::string lock_mode = "process";
    std::string log_level = "info";
    bool no_lock_recovery = false;
    std::string lock_lease_ms; // parsed in finish(), to say what is wrong with it
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
                   "locks; redis: redis://HOST[:PORT][/DB], unix:///PATH or /PATH");
    app.add_option("--lock-lease-ms", raw.lock_lease_ms,
                   "semaphore, redis: a held key's lease in ms; after it a waiter takes the key, "
                   "and the old holder's write is refused with --fencing");
    app.add_flag("--fencing", o.fencing,
                 "the counter store refuses a write whose fencing token is older "
                 "than the newest that wrote the key (409)");
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
    if (!raw.lock_lease_ms.empty()) {
        const auto& text = raw.lock_lease_ms;
        std::int64_t ms = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
        if (ec != std::errc() || end != text.data() + text.size() || ms <= 0 || ms > 86'400'000)
            return fmt::format("--lock-lease-ms: a lease is 1..86400000 ms, not '{}'", text);
        o.lock_lease_ms = ms;
    }
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

// The flags that are not settings: -c FILE and the checks, on the command line only.
struct FileFlags {
    std::string config;
    bool check = false;
    bool print = false;
};

// One CLI11 parse of every flag. read_file: -c FILE is read (CLI11's set_config: TOML or INI),
// else it is only recorded, to parse the command line alone.
struct FlagParser {
    CLI::App app{"forklock: a pre-fork HTTP server that counts, under a lock per key", "forklock"};
    Options o;
    RawOptions raw;
    FileFlags files;
    bool read_file;

    explicit FlagParser(bool read) : read_file(read)
    {
        add_flags(app, o, raw);
        add_file_flags();
        if (read_file)
            for (CLI::Option* opt : app.get_options()) opt->capture_default_str(); // before parse
    }

    void add_file_flags()
    {
        constexpr const char* kConfigHelp = "read settings from FILE (TOML or INI, KEY = VALUE "
                                            "with KEY a long flag's name); flags win over it";
        if (read_file)
            app.set_config("-c,--config", "", kConfigHelp)->configurable(false);
        else
            app.add_option("-c,--config", files.config, kConfigHelp);
        app.add_flag("--check-config", files.check,
                     "load the settings, probe the address, lock table and lock server, print "
                     "\"configuration ok\" or why not, and exit 0 or 2 without serving")
            ->configurable(false);
        app.add_flag("--print-config", files.print,
                     "print the resolved settings, each with where it came from (flag, file, "
                     "default), as a config file, and exit")
            ->configurable(false);
        app.allow_config_extras(CLI::config_extras_mode::error);
    }

    bool parse(const std::vector<std::string>& args, ParseResult& result);
    std::vector<Setting> settings(const FlagParser& command_line) const;
};

ParseResult& fail(ParseResult& result, const std::string& problem)
{
    result.exit_code = 2;
    result.err = fmt::format("forklock: error: {}\n", problem);
    return result;
}

// file_error: a CLI11 error met while reading `file`, as one line naming the file and the key.
std::string file_error(const CLI::ParseError& e, const std::filesystem::path& file)
{
    std::string what = e.what();
    constexpr std::string_view kUnknown = "INI was not able to parse ";
    if (what.starts_with(kUnknown)) {
        const std::string key = what.substr(kUnknown.size());
        what = key.ends_with(".++") ? fmt::format("section [{}]: the keys have no sections",
                                                  key.substr(0, key.size() - 3))
                                    : fmt::format("unknown key '{}'", key);
    } else if (what.starts_with("--")) {
        what.erase(0, 2); // "--workers: Value 0 not in range 1 to 64": the key is "workers"
    }
    return fmt::format("{}: {}", file.string(), what);
}

std::string unreadable(const std::filesystem::path& file)
{
    std::error_code ignored;
    if (std::filesystem::is_directory(file, ignored)) return "a directory, not a config file";
    std::ifstream in(file);
    if (!in) return fmt::format("cannot be read: {}", std::strerror(errno));
    return "";
}

bool FlagParser::parse(const std::vector<std::string>& args, ParseResult& result)
{
    std::vector<std::string> reversed(args.rbegin(), args.rend()); // CLI11 pops from the back
    try {
        app.parse(reversed);
        return true;
    } catch (const CLI::ParseError& e) {
        if (read_file) return fail(result, file_error(e, result.config_file)), false;
        std::ostringstream out, err;
        result.exit_code = app.exit(e, out, err);
        if (result.exit_code != 0) result.exit_code = 2;
        result.out = out.str();
        result.err = err.str();
        return false;
    }
}

// toml_value: the option's resolved value as a TOML value CLI11 reads back.
std::string toml_value(const CLI::Option& opt)
{
    if (opt.get_expected_min() == 0) return opt.count() > 0 && opt.as<bool>() ? "true" : "false";
    const std::string text = opt.count() > 0 ? opt.as<std::string>() : opt.get_default_str();
    const std::string type = opt.get_type_name();
    const bool number =
        type.starts_with("INT") || type.starts_with("UINT") || type.starts_with("FLOAT");
    if (number && !text.empty()) return text;
    return text.find('"') == std::string::npos ? fmt::format("\"{}\"", text)
                                               : fmt::format("'{}'", text);
}

std::vector<Setting> FlagParser::settings(const FlagParser& command_line) const
{
    std::vector<Setting> out;
    for (const CLI::Option* opt : app.get_options()) {
        const std::string key = opt->get_single_name();
        if (!opt->get_configurable() || key == "help" || key == "version") continue;
        SettingSource source = SettingSource::default_value;
        if (command_line.app.get_option("--" + key)->count() > 0)
            source = SettingSource::flag;
        else if (opt->count() > 0)
            source = SettingSource::file;
        out.push_back({key, toml_value(*opt), source});
    }
    return out;
}

// blame: a problem finish() found ("--KEY: ..."), prefixed with the file when KEY came from it.
std::string blame(const std::string& problem, const ParseResult& result)
{
    if (!problem.starts_with("--")) return problem;
    const std::string key = problem.substr(2, problem.find_first_of(": ") - 2);
    for (const Setting& s : result.settings)
        if (s.key == key && s.source == SettingSource::file)
            return fmt::format("{}: {}", result.config_file.string(), problem);
    return problem;
}

} // namespace

std::string config_error(const Options& o)
{
    if (auto problem = lock_name_problem(o); !problem.empty()) return problem;
    if (facts(o.lock_mode).needs_url && o.lock_url.empty())
        return o.lock_mode == LockMode::redis
                   ? "--lock-mode redis: needs --lock-url URL (redis://HOST:PORT or a socket path)"
                   : "--lock-mode postgres: needs --lock-url URL (a libpq connection string)";
    if (!facts(o.lock_mode).needs_url && !o.lock_url.empty())
        return "--lock-url: only with --lock-mode postgres or redis";
    if (auto problem = LockTable::url_problem(o.lock_mode, o.lock_url); !problem.empty())
        return "--lock-url: " + problem;
    if (o.lock_lease_ms > 0 && !facts(o.lock_mode).leases)
        return fmt::format("--lock-lease-ms: no lease in {} mode: {}", to_string(o.lock_mode),
                           lease_problem(o.lock_mode));
    if (o.fencing && !issues_tokens(facts(o.lock_mode)))
        return fmt::format(
            "--fencing: {} mode issues no fencing tokens (each worker's table is its "
            "own, so their numbers would repeat); use a shared mode",
            to_string(o.lock_mode));
    if (o.lock_mode == LockMode::semaphore && o.lock_slots > LockTable::kMaxSemaphoreCapacity)
        return fmt::format("--lock-slots: at most {} in semaphore mode (one mapping per semaphore)",
                           LockTable::kMaxSemaphoreCapacity);
    return "";
}

ParseResult parse_options(const std::vector<std::string>& args)
{
    ParseResult result;
    // Pass 1, the command line alone: --help, --version and its own errors, and which settings
    // it gave (their source is "flag").
    FlagParser command_line(false);
    if (!command_line.parse(args, result)) return result;
    // Pass 2, the command line and then the file: what the file adds. Pass 1 passed, so a
    // CLI11 error here is the file's.
    FlagParser full(true);
    result.config_file = command_line.files.config;
    if (!result.config_file.empty()) {
        if (auto problem = unreadable(result.config_file); !problem.empty())
            return fail(result, fmt::format("{}: {}", result.config_file.string(), problem));
    }
    if (!full.parse(args, result)) return result;
    result.settings = full.settings(command_line);
    if (auto problem = finish(full.o, full.raw); !problem.empty())
        return fail(result, blame(problem, result));
    if (full.files.print) {
        result.out = format_settings(result.settings);
        return result;
    }
    result.action = full.files.check ? Action::check_config : Action::serve;
    result.options = full.o;
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
