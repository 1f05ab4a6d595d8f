// The config file (-c FILE), --print-config and what a HUP makes of the file read again, without
// a server: parse_options() and plan_reload() on files in a temporary directory.

#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "app/config_file.h"
#include "app/options.h"
#include "harness/temp_dir.h"

using namespace forklock;

namespace {

// A config file `text` in a directory of its own, removed with it.
class ConfigFile {
public:
    explicit ConfigFile(const std::string& text, const std::string& name = "forklock.toml")
        : dir_("forklock-config"), path_(dir_.path() / name)
    {
        write(text);
    }
    void write(const std::string& text) const { std::ofstream(path_, std::ios::trunc) << text; }
    std::string path() const { return path_.string(); }

private:
    harness::TempDir dir_;
    std::filesystem::path path_;
};

ParseResult parse(std::vector<std::string> args) { return parse_options(args); }

const Setting& setting(const ParseResult& r, const std::string& key)
{
    for (const Setting& s : r.settings)
        if (s.key == key) return s;
    FAIL("no setting " << key);
    throw;
}

} // namespace

TEST_CASE("Config file: its keys, named as the long flags, set the options", "[config]")
{
    ConfigFile file(
        "workers = 3\nlock-mode = \"flock\"\npreload = true\n"
        "bind = \"127.0.0.1:9001\"\nheader-timeout = 2.5\nallowed-hosts = \"a.test\"\n");
    auto r = parse({"-c", file.path()});
    INFO(r.err);
    REQUIRE(r.options);
    CHECK(r.options->workers == 3);
    CHECK(r.options->lock_mode == LockMode::flock);
    CHECK(r.options->preload);
    CHECK(r.options->bind.port == 9001);
    CHECK(r.options->header_timeout_s == 2.5);
    CHECK(r.options->allowed_hosts == std::vector<std::string>{"a.test"});
    CHECK(r.config_file == file.path());
}

TEST_CASE("Config file: an INI file is read as well", "[config]")
{
    ConfigFile file("; forklock\nworkers=2\nno-trace=true\n", "forklock.ini");
    auto r = parse({"--config", file.path()});
    REQUIRE(r.options);
    CHECK(r.options->workers == 2);
    CHECK_FALSE(r.options->trace);
}

TEST_CASE("Config file: the command line wins over the file, the file over the default", "[config]")
{
    ConfigFile file("workers = 3\nthreads = 2\n");
    auto r = parse({"-w", "5", "-c", file.path()});
    REQUIRE(r.options);
    CHECK(r.options->workers == 5);
    CHECK(r.options->threads == 2);
    CHECK(r.options->timeout_s == 30);
    CHECK(setting(r, "workers").source == SettingSource::flag);
    CHECK(setting(r, "threads").source == SettingSource::file);
    CHECK(setting(r, "timeout").source == SettingSource::default_value);
}

TEST_CASE("Config file: a bad key or value exits 2 with one line naming the file and the key",
          "[config]")
{
    struct Case {
        std::string text;
        std::string says;
    };
    const std::vector<Case> cases = {
        {"workerz = 3\n", "unknown key 'workerz'"},
        {"workers = \"many\"\n", "workers: "},
        {"workers = 0\n", "workers: "},
        {"bind = \"::1:80\"\n", "--bind: '::1:80'"},
        {"lock-mode = \"spin\"\n", "--lock-mode: 'spin'"},
        {"[server]\nworkers = 2\n", "section [server]"},
        {"config = \"other.toml\"\n", "config: This option is not allowed"},
        {"check-config = true\n", "check-config: This option is not allowed"},
        {"workers = [1, 2]\n", "workers: "},
    };
    for (const auto& c : cases) {
        ConfigFile file(c.text);
        auto r = parse({"-c", file.path()});
        INFO(c.text << " -> " << r.err);
        CHECK_FALSE(r.options);
        CHECK(r.exit_code == 2);
        CHECK(r.err.starts_with("forklock: error: " + file.path() + ": "));
        CHECK(r.err.find(c.says) != std::string::npos);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
}

TEST_CASE("Config file: a flag's bad value is not blamed on the file", "[config]")
{
    ConfigFile file("workers = 2\n");
    auto r = parse({"-c", file.path(), "--lock-mode", "spin"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(file.path()) == std::string::npos);
    CHECK(r.err.find("--lock-mode: 'spin'") != std::string::npos);
}

TEST_CASE("Config file: a missing file or a directory exits 2 naming it", "[config]")
{
    harness::TempDir dir("forklock-config");
    const std::string missing = (dir.path() / "nope.toml").string();
    auto r = parse({"-c", missing});
    CHECK(r.exit_code == 2);
    CHECK_FALSE(r.options);
    CHECK(r.err == "forklock: error: " + missing + ": cannot be read: No such file or directory\n");
    auto d = parse({"-c", dir.path().string()});
    CHECK(d.exit_code == 2);
    CHECK(d.err.find("a directory, not a config file") != std::string::npos);
}

TEST_CASE("--print-config: every setting, where it came from, as a file that reads back",
          "[config]")
{
    ConfigFile file("threads = 3\nlock-mode = \"flock\"\naccess-logfile = \"-\"\n");
    auto r = parse({"-w", "2", "-c", file.path(), "--print-config"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK_FALSE(r.options); // nothing to serve
    CHECK(r.out.find("workers = 2  # flag\n") != std::string::npos);
    CHECK(r.out.find("threads = 3  # file\n") != std::string::npos);
    CHECK(r.out.find("lock-mode = \"flock\"  # file\n") != std::string::npos);
    CHECK(r.out.find("timeout = 30  # default\n") != std::string::npos);
    CHECK(r.out.find("preload = false  # default\n") != std::string::npos);
    for (std::string key : {"config", "check-config", "print-config", "help", "version"})
        CHECK(r.out.find("\n" + key + " =") == std::string::npos);

    ConfigFile saved(r.out);
    auto again = parse({"-c", saved.path()});
    auto first = parse({"-w", "2", "-c", file.path()});
    REQUIRE(again.options);
    REQUIRE(first.options);
    CHECK(again.options->workers == 2);
    CHECK(again.options->threads == 3);
    CHECK(again.options->lock_mode == LockMode::flock);
    CHECK(again.options->access_log == "-");
    for (const Setting& s : first.settings) CHECK(setting(again, s.key).value == s.value);
}

TEST_CASE("--check-config: asks main for a check, with the options", "[config]")
{
    auto r = parse({"--check-config", "-w", "2"});
    REQUIRE(r.options);
    CHECK(r.action == Action::check_config);
    CHECK(parse({}).action == Action::serve);
}

// What a HUP plans when the file held `before` at start and holds `after` now; `running` is
// what the server runs (the start's options unless a test changes them).
struct Hup {
    ParseResult loaded;
    ParseResult fresh;
    ReloadPlan plan;

    Hup(const std::string& before, const std::string& after,
        const std::function<void(Options&)>& since_start = {})
    {
        ConfigFile file(before);
        loaded = parse({"-c", file.path()});
        REQUIRE(loaded.options);
        Options running = *loaded.options;
        if (since_start) since_start(running);
        file.write(after);
        fresh = parse({"-c", file.path()});
        REQUIRE(fresh.options);
        plan = plan_reload(running, loaded.settings, fresh);
    }
};

TEST_CASE("HUP plan: only the keys the file changed are applied, the rest stay as they run",
          "[config]")
{
    const Hup hup("workers = 2\ntimeout = 30\nlog-level = \"info\"\n",
                  "workers = 2\ntimeout = 9\nlog-level = \"debug\"\n", [](Options& running) {
                      running.workers = 5;            // TTIN since
                      running.dashboard_token = "t1"; // the master's random one
                  });
    const ReloadPlan& plan = hup.plan;
    CHECK(plan.next.timeout_s == 9);
    CHECK(plan.next.log_level == LogLevel::debug);
    CHECK(plan.next.workers == 5);
    CHECK(plan.next.dashboard_token == "t1");
    CHECK_FALSE(plan.change);
    CHECK(plan.applied ==
          std::vector<std::string>{"timeout: 30 -> 9", "log-level: \"info\" -> \"debug\""});
    CHECK(plan.need_restart.empty());
}

TEST_CASE("HUP plan: mode, preload, workers and threads go the way /control/config's go",
          "[config]")
{
    const Hup hup("workers = 2\n", "workers = 4\nlock-mode = \"semaphore\"\npreload = true\n");
    const ReloadPlan& plan = hup.plan;
    REQUIRE(plan.change);
    CHECK(plan.change->workers == 4);
    CHECK(plan.change->mode == LockMode::semaphore);
    CHECK(plan.change->preload == true);
    CHECK_FALSE(plan.change->threads);
    CHECK(plan.next.workers == 2); // through the change, not behind the reload's checks
    CHECK(plan.next.lock_mode == hup.loaded.options->lock_mode);

    const Hup slots("workers = 2\n", "workers = 2\nlock-slots = 64\n");
    REQUIRE(slots.plan.change); // a new table, with the new size
    CHECK(slots.plan.next.lock_slots == 64);
}

TEST_CASE("HUP plan: the bind address and other start-only keys are kept, and said every time",
          "[config]")
{
    const Hup hup("bind = \"127.0.0.1:8000\"\n",
                  "bind = \"127.0.0.1:9000\"\ndata-dir = \"elsewhere\"\n");
    const ReloadPlan& plan = hup.plan;
    CHECK(plan.next.bind.port == 8000);
    CHECK(plan.next.data_dir == hup.loaded.options->data_dir);
    CHECK(plan.need_restart ==
          std::vector<std::string>{"bind: \"127.0.0.1:8000\" -> \"127.0.0.1:9000\"",
                                   "data-dir: \"forklock-data\" -> \"elsewhere\""});
    const ReloadPlan again = plan_reload(plan.next, plan.settings, hup.fresh);
    CHECK(again.need_restart.size() == 2);
}
