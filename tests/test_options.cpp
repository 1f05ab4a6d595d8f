#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>

#include "app/options.h"

using namespace forklock;

namespace {

ParseResult parse(std::vector<std::string> args) { return parse_options(args); }

} // namespace

TEST_CASE("parse_options: defaults match gunicorn's where gunicorn has the flag", "[options]")
{
    auto r = parse({});
    REQUIRE(r.options);
    const Options& o = *r.options;
    CHECK(o.workers == 1);
    CHECK(o.threads == 1);
    CHECK(o.bind.host == "127.0.0.1");
    CHECK(o.bind.port == 8000);
    CHECK_FALSE(o.preload);
    CHECK(o.lock_mode == kProcessMode);
    CHECK(o.lock_recovery);
    CHECK(o.data_dir == "forklock-data");
    CHECK(o.timeout_s == 30);
    CHECK(o.graceful_timeout_s == 30);
    CHECK(o.lock_slots == 1024);
    CHECK(o.worker_connections == 4096);
}

TEST_CASE("parse_options: every flag is read", "[options]")
{
    auto r = parse({"-w",
                    "4",
                    "--threads",
                    "3",
                    "-b",
                    "[::1]:0",
                    "--preload",
                    "--lock-mode",
                    "semaphore",
                    "--no-lock-recovery",
                    "--data-dir",
                    "/tmp/x",
                    "-t",
                    "5",
                    "--graceful-timeout",
                    "7",
                    "--max-requests",
                    "100",
                    "--max-requests-jitter",
                    "10",
                    "-p",
                    "/tmp/p.pid",
                    "--access-logfile",
                    "-",
                    "--log-level",
                    "debug",
                    "--lock-slots",
                    "16",
                    "--worker-connections",
                    "64"});
    REQUIRE(r.options);
    const Options& o = *r.options;
    CHECK(o.workers == 4);
    CHECK(o.threads == 3);
    CHECK(o.bind.host == "::1");
    CHECK(o.bind.port == 0);
    CHECK(o.preload);
    CHECK(o.lock_mode == LockMode::semaphore);
    CHECK_FALSE(o.lock_recovery);
    CHECK(o.timeout_s == 5);
    CHECK(o.graceful_timeout_s == 7);
    CHECK(o.max_requests == 100);
    CHECK(o.max_requests_jitter == 10);
    CHECK(o.pid_file == "/tmp/p.pid");
    CHECK(o.access_log == "-");
    CHECK(o.log_level == LogLevel::debug);
    CHECK(o.lock_slots == 16);
    CHECK(o.worker_connections == 64);
}

TEST_CASE("parse_options: invalid values exit 2 with a message naming the flag", "[options]")
{
    std::vector<std::vector<std::string>> bad = {
        {"-w", "0"},
        {"-w", "abc"},
        {"--threads", "0"},
        {"--threads", "1000"},
        {"-b", "nope:99999"},
        {"-b", "::1:80"},
        {"-b", "[::1"},
        {"-b", "host:"},
        {"--lock-mode", "spin"},
        {"--log-level", "loud"},
        {"-t", "-1"},
        {"--lock-slots", "0"},
        {"--worker-connections", "0"},
        {"--unknown"},
        {"--data-dir", ""},
        {"--lock-mode", "semaphore", "--lock-slots", "100000"},
        {"-w"}};
    for (const auto& args : bad) {
        auto r = parse(args);
        INFO(args[0] << " " << (args.size() > 1 ? args[1] : ""));
        CHECK_FALSE(r.options);
        CHECK(r.exit_code == 2);
        CHECK_FALSE(r.err.empty());
    }
    CHECK(parse({"--lock-mode", "spin"}).err.find("--lock-mode") != std::string::npos);
}

TEST_CASE("parse_options: --lock-mode postgres needs --lock-url, and only it takes one",
          "[options]")
{
    auto ok = parse({"--lock-mode", "postgres", "--lock-url", "host=/run/pg dbname=locks"});
    REQUIRE(ok.options);
    CHECK(ok.options->lock_mode == forklock::LockMode::postgres);
    CHECK(ok.options->lock_url == "host=/run/pg dbname=locks");
    auto missing = parse({"--lock-mode", "postgres"});
    CHECK(missing.exit_code == 2);
    CHECK(missing.err.find("--lock-url") != std::string::npos);
    auto stray = parse({"--lock-mode", "mutex", "--lock-url", "host=/run/pg"});
    CHECK(stray.exit_code == 2);
    CHECK(stray.err.find("--lock-url: only with --lock-mode postgres") != std::string::npos);
}

TEST_CASE("parse_options: --help and --version print and exit 0", "[options]")
{
    auto help = parse({"--help"});
    CHECK_FALSE(help.options);
    CHECK(help.exit_code == 0);
    CHECK(help.out.find("--lock-mode") != std::string::npos);
    auto version = parse({"--version"});
    CHECK(version.exit_code == 0);
    CHECK(version.out.find("forklock") != std::string::npos);
}

TEST_CASE("parse_bind and bind_url: IPv4, IPv6 in brackets, host alone", "[options]")
{
    CHECK(parse_bind("0.0.0.0:80")->port == 80);
    CHECK(parse_bind("localhost")->port == 8000);
    CHECK(parse_bind("[::1]:8080")->host == "::1");
    CHECK_FALSE(parse_bind(":80"));
    CHECK_FALSE(parse_bind("a:b"));
    CHECK(bind_url({"::1", 9}) == "http://[::1]:9");
    CHECK(bind_url({"127.0.0.1", 9}) == "http://127.0.0.1:9");
}

TEST_CASE("lost_update_warnings: exactly the configurations that lose updates warn", "[options]")
{
    auto warns = [](LockMode mode, int workers, bool preload) {
        Options o;
        o.lock_mode = mode;
        o.workers = workers;
        o.preload = preload;
        return !lost_update_warnings(o).empty();
    };
    CHECK(warns(LockMode::none, 1, true));
    CHECK(warns(LockMode::thread, 2, true));
    CHECK_FALSE(warns(LockMode::thread, 1, false));
    CHECK(warns(LockMode::mutex, 2, false));
    CHECK(warns(LockMode::semaphore, 2, false));
    CHECK_FALSE(warns(LockMode::mutex, 2, true));
    CHECK_FALSE(warns(LockMode::semaphore, 4, true));
    CHECK_FALSE(warns(LockMode::mutex, 1, false));
    CHECK_FALSE(warns(LockMode::flock, 4, false));
}

TEST_CASE("parse_options: the trace is on by default, 65536 records; --no-trace and --trace-size",
          "[options]")
{
    auto d = parse({});
    REQUIRE(d.options);
    CHECK(d.options->trace);
    CHECK(d.options->trace_size == 65536);
    auto r = parse({"--no-trace", "--trace-size", "1024"});
    REQUIRE(r.options);
    CHECK_FALSE(r.options->trace);
    CHECK(r.options->trace_size == 1024);
}

TEST_CASE("parse_options: --trace-size must be a power of two within the ring's bounds",
          "[options]")
{
    for (const char* bad : {"1000", "8", "0", "-16", "33554432", "x"}) {
        auto r = parse({"--trace-size", bad});
        INFO(bad);
        CHECK_FALSE(r.options);
        CHECK(r.exit_code == 2);
    }
}

TEST_CASE("parse_options: the dashboard's token and controls", "[options]")
{
    auto defaults = parse({});
    REQUIRE(defaults.options);
    CHECK(defaults.options->dashboard_token.empty()); // the master makes one at start
    CHECK(defaults.options->dashboard_controls == DashboardControls::loopback);
    auto set = parse({"--dashboard-token", "abc", "--dashboard-controls", "token"});
    REQUIRE(set.options);
    CHECK(set.options->dashboard_token == "abc");
    CHECK(set.options->dashboard_controls == DashboardControls::token);
    CHECK(parse({"--dashboard-controls", "off"}).options->dashboard_controls ==
          DashboardControls::off);
    auto bad = parse({"--dashboard-controls", "everyone"});
    CHECK_FALSE(bad.options);
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--dashboard-controls") != std::string::npos);
}

TEST_CASE("make_dashboard_token: 32 hex digits, a new one each time", "[options]")
{
    const auto a = make_dashboard_token(), b = make_dashboard_token();
    CHECK(a.size() == 32);
    CHECK(std::all_of(a.begin(), a.end(), [](char c) { return std::isxdigit(c); }));
    CHECK(a != b);
}

TEST_CASE("parse_options: --lock-name takes a checked name for semaphore and mutex", "[options]")
{
    auto r = parse({"--lock-mode", "semaphore", "--lock-name", "orders_1", "--lock-share"});
    REQUIRE(r.options);
    CHECK(r.options->lock_name == "orders_1");
    CHECK(r.options->lock_share);
    auto flock = parse({"--lock-mode", "flock", "--lock-name", "x"});
    CHECK(flock.options); // accepted, a no-op the server notes: the kernel already shares
    const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
        {{"--lock-name", "a.b"}, "--lock-name: a lock table name is made of"},
        {{"--lock-name", "a/b"}, "--lock-name: a lock table name is made of"},
        {{"--lock-name", std::string(65, 'a')}, "1 to 64 characters"},
        {{"--lock-mode", "thread", "--lock-name", "x"}, "cannot be found by name"},
        {{"--lock-mode", "none", "--lock-name", "x"}, "cannot be found by name"},
        {{"--lock-share"}, "--lock-share: only with --lock-name"},
    };
    for (const auto& [args, why] : bad) {
        auto p = parse(args);
        INFO(why);
        CHECK_FALSE(p.options);
        CHECK(p.exit_code == 2);
        CHECK(p.err.find(why) != std::string::npos);
    }
}

TEST_CASE("lost_update_warnings: a named semaphore or mutex table without --preload is safe",
          "[options]")
{
    Options o;
    o.workers = 4;
    o.lock_mode = LockMode::mutex;
    CHECK(lost_update_warnings(o).size() == 1);
    o.lock_name = "t";
    CHECK(lost_update_warnings(o).empty());
    o.lock_mode = LockMode::semaphore;
    CHECK(lost_update_warnings(o).empty());
}

TEST_CASE("parse_options: connection timeouts default to 10 s, 10 s and 75 s and are read",
          "[options]")
{
    auto defaults = parse({});
    REQUIRE(defaults.options);
    CHECK(defaults.options->header_timeout_s == 10);
    CHECK(defaults.options->body_timeout_s == 10);
    CHECK(defaults.options->keepalive_timeout_s == 75);
    auto r = parse({"--header-timeout", "0.5", "--body-timeout", "2", "--keepalive-timeout", "0"});
    REQUIRE(r.options);
    CHECK(r.options->header_timeout_s == 0.5);
    CHECK(r.options->body_timeout_s == 2);
    CHECK(r.options->keepalive_timeout_s == 0);
    const auto help = parse({"--help"}).out;
    for (const char* flag : {"--header-timeout", "--body-timeout", "--keepalive-timeout"})
        CHECK(help.find(flag) != std::string::npos);
}

TEST_CASE("parse_options: a connection timeout must be a number of seconds in range", "[options]")
{
    const std::vector<std::vector<std::string>> bad = {
        {"--header-timeout", "0"},     {"--header-timeout", "-1"},
        {"--body-timeout", "0"},       {"--body-timeout", "x"},
        {"--keepalive-timeout", "-1"}, {"--keepalive-timeout", "3601"},
        {"--header-timeout", "99999"}};
    for (const auto& args : bad) {
        INFO(args[0] << " " << args[1]);
        auto r = parse(args);
        CHECK_FALSE(r.options);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find(args[0]) != std::string::npos);
    }
}

TEST_CASE("parse_options: --allowed-hosts takes names without ports, or *", "[options]")
{
    CHECK(parse({}).options->allowed_hosts.empty());
    auto set = parse({"--allowed-hosts", "Class.example, lab.example,[::2]"});
    REQUIRE(set.options);
    CHECK(set.options->allowed_hosts ==
          std::vector<std::string>{"class.example", "lab.example", "::2"});
    CHECK(parse({"--allowed-hosts", "*"}).options->allowed_hosts == std::vector<std::string>{"*"});
    for (const char* bad : {"a.example:8000", "a.example,,b", "http://a.example", ","}) {
        INFO(bad);
        auto refused = parse({"--allowed-hosts", bad});
        CHECK_FALSE(refused.options);
        CHECK(refused.err.find("--allowed-hosts") != std::string::npos);
    }
}
