#pragma once
// The server's command line, gunicorn's flag names where gunicorn has the flag. Everything is
// validated here, before the master binds or forks anything.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/log.h"
#include "app/option_values.h"
#include <forklock/lock_mode.h>

namespace forklock {

struct Options {
    int workers = 1;
    int threads = 1;
    // Connections a worker holds at once (nginx's worker_connections); at the cap its loops stop
    // accepting and the other workers take the new ones.
    std::uint32_t worker_connections = 4096;
    BindAddress bind;
    bool preload = false;
    LockMode lock_mode = kProcessMode;
    bool lock_recovery = true;
    std::string lock_name;   // --lock-name: semaphore, mutex: the table is found by this name
    bool lock_share = false; // --lock-share: join a named table another live server uses
    std::string lock_url;    // --lock-url: postgres: the libpq connection string or URI
    std::int64_t lock_lease_ms = 0; // --lock-lease-ms: semaphore: a held key's lease; 0 = none
    bool fencing = false; // --fencing: the store refuses a write with a stale fencing token
    // Not a flag: the fencing tokens' restart seed the master took (token_epoch.h), for tables
    // the workers make themselves.
    std::uint64_t token_floor = 0;
    std::filesystem::path data_dir = "forklock-data";
    int timeout_s = 30; // 0 = no hung-worker detection
    int graceful_timeout_s = 30;
    std::uint64_t max_requests = 0; // 0 = never recycle
    std::uint64_t max_requests_jitter = 0;
    std::filesystem::path pid_file;
    std::string access_log; // "" = none, "-" = stderr
    LogLevel log_level = LogLevel::info;
    std::size_t lock_slots = 1024;
    bool trace = true;              // --no-trace: no trace ring, /trace and /analysis answer 404
    std::size_t trace_size = 65536; // records the trace keeps: a power of two (TraceRing's bounds)
    std::string dashboard_token;    // "": the master makes a random one at start and logs it
    DashboardControls dashboard_controls = DashboardControls::loopback;
    // --allowed-hosts: Host names answered besides loopback ones (site_guard.h); "*" = any.
    std::vector<std::string> allowed_hosts;
    // Connection timeouts in seconds, like nginx's client_header_timeout, client_body_timeout and
    // keepalive_timeout. A head or a body of this API fits in a packet or two, so 10 s is
    // generous for a real client, while nginx's 60 s lets a slowloris client hold a connection
    // six times longer; keep-alive keeps nginx's 75 s.
    double header_timeout_s = 10;    // the whole request head, however it trickles in
    double body_timeout_s = 10;      // between two reads of a body
    double keepalive_timeout_s = 75; // idle between requests; 0 = no keep-alive
};

// Where a setting's value came from: precedence is the command line, then -c FILE, then the
// default.
enum class SettingSource { flag, file, default_value };
const char* to_string(SettingSource source) noexcept;

// One setting as resolved: its key (the long flag's name without "--", the name -c FILE uses)
// and its value as TOML text (quoted when a string), ready to be saved in a config file.
struct Setting {
    std::string key;
    std::string value;
    SettingSource source = SettingSource::default_value;
};

// What the command line asks for besides the settings: serve, or check and exit.
enum class Action { serve, check_config };

// Either options to run with, or an exit code and the text to print (help, version,
// --print-config or an error).
struct ParseResult {
    std::optional<Options> options;
    int exit_code = 0;
    std::string out; // for stdout (--help, --version, --print-config)
    std::string err; // for stderr (invalid values): one line, "forklock: error: ..."
    Action action = Action::serve;
    std::filesystem::path config_file; // -c FILE; empty without one
    std::vector<Setting> settings;     // every key, in --help's order (with options only)
};

// args exclude argv[0]. With -c FILE, the file's keys fill what the command line left unset;
// an error in the file names the file and the key. --print-config answers in `out`, with no
// options; --check-config returns the options with Action::check_config.
ParseResult parse_options(const std::vector<std::string>& args);

// What the command line and /control/config both refuse in a lock mode and worker count that
// each pass alone: the message, or "" when the combination is valid.
std::string config_error(const Options& options);

// One sentence per reason this configuration loses updates (empty when it doesn't).
std::vector<std::string> lost_update_warnings(const Options& options);

} // namespace forklock
