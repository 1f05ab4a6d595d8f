// The real server and its config file: read at start, read again on HUP (what changed is applied,
// a broken file changes nothing and loses no worker, the bind address stays), and
// --check-config, which probes and starts nothing.

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "harness/http_client.h"
#include "harness/notify_socket.h"
#include "harness/server_process.h"
#include "harness/shm_names.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

void write_file(const std::filesystem::path& path, const std::string& text)
{
    std::ofstream(path, std::ios::trunc) << text;
}

// A server of `args` plus -c FILE, FILE holding `text` at start.
struct ConfiguredServer {
    TempDir dir{"forklock-config"};
    std::filesystem::path file = dir.path() / "forklock.toml";
    std::optional<ServerProcess> server;

    ConfiguredServer(const std::string& text, int workers, std::vector<std::string> env = {})
    {
        write_file(file, text);
        ServerSpec spec;
        spec.args = {"-c", file.string()};
        spec.add_bind = false; // the file names it
        spec.workers = workers;
        spec.env = std::move(env);
        server.emplace(spec);
    }
};

// --check-config with `args`: its exit code and everything it printed.
std::pair<int, std::string> check_config(std::vector<std::string> args)
{
    ServerSpec spec;
    spec.args = std::move(args);
    spec.args.push_back("--check-config");
    spec.refused = true;
    ServerProcess check(spec);
    const auto code = check.wait_exit(30s);
    return {code.value_or(-1), check.log()};
}

} // namespace

TEST_CASE("Server config file: a HUP applies what the file changed", "[config]")
{
    ConfiguredServer s("bind = \"127.0.0.1:0\"\nworkers = 1\ntimeout = 30\n", 1);
    ServerProcess& server = *s.server;
    write_file(s.file, "bind = \"127.0.0.1:0\"\nworkers = 2\ntimeout = 20\n");
    server.signal(SIGHUP);
    CHECK(server.wait_for_log("Config file: workers: 1 -> 2"));
    CHECK(server.wait_for_log("Config file: timeout: 30 -> 20"));
    CHECK(wait_until([&] { return server.booted_worker_pids().size() == 2; }, 15s, 50ms));
    CHECK(server.count_in_log("restart to apply") == 0);
}

TEST_CASE("Server config file: a HUP with a broken file keeps the config and every worker",
          "[config]")
{
    TempDir notify_dir("forklock-notify");
    NotifySocket notify(notify_dir.path() / "notify");
    ConfiguredServer s("bind = \"127.0.0.1:0\"\nworkers = 2\n", 2,
                       {"NOTIFY_SOCKET=" + notify.path().string()});
    ServerProcess& server = *s.server;
    std::vector<std::string> seen;
    REQUIRE(notify.wait_for("READY=1", seen, 15s));
    const std::set<pid_t> before = server.booted_worker_pids();
    REQUIRE(before.size() == 2);

    for (std::string broken : {"workerz = 3\n", "workers = \"many\"\n"}) {
        INFO(broken);
        write_file(s.file, "bind = \"127.0.0.1:0\"\n" + broken);
        const int refusals = server.count_in_log("Config file not reloaded");
        server.signal(SIGHUP);
        REQUIRE(notify.wait_for("RELOADING=1", seen, 10s));
        REQUIRE(notify.wait_for("READY=1", seen, 10s)); // systemd is not left "reloading"
        CHECK(server.count_in_log("Config file not reloaded") == refusals + 1);
        CHECK(server.log().find(s.file.string() + ": ") != std::string::npos);
        CHECK(server.worker_pids() == before); // none replaced, none lost
        CHECK(http_request(server.endpoint(), "GET", "/healthz").status == 200);
    }
    std::filesystem::remove(s.file); // unreadable
    server.signal(SIGHUP);
    CHECK(server.wait_for_log("cannot be read: No such file or directory"));
    REQUIRE(notify.wait_for("READY=1", seen, 10s));
    CHECK(server.worker_pids() == before);

    write_file(s.file, "bind = \"127.0.0.1:0\"\nworkers = 3\n"); // mended: the next HUP applies it
    server.signal(SIGHUP);
    CHECK(server.wait_for_log("Config file: workers: 2 -> 3"));
}

TEST_CASE("Server config file: a HUP does not move the bind address; it says so", "[config]")
{
    ConfiguredServer s("bind = \"127.0.0.1:0\"\n", 1);
    ServerProcess& server = *s.server;
    write_file(s.file, "bind = \"127.0.0.1:1\"\n");
    server.signal(SIGHUP);
    CHECK(server.wait_for_log(
        "Config file: bind: \"127.0.0.1:0\" -> \"127.0.0.1:1\": a HUP cannot change it"));
    CHECK(http_request(server.endpoint(), "GET", "/healthz").status == 200);
}

TEST_CASE("Server config file: a bad file at start exits 2 with one line naming it", "[config]")
{
    TempDir dir("forklock-config");
    const auto file = dir.path() / "forklock.toml";
    write_file(file, "workers = 2\nlock-mode = \"spin\"\n");
    ServerSpec spec;
    spec.args = {"-c", file.string()};
    spec.refused = true;
    ServerProcess server(spec);
    REQUIRE(server.wait_exit(10s) == 2);
    CHECK(server.log() ==
          fmt::format("forklock: error: {}: --lock-mode: 'spin' is not one of "
                      "none, thread, semaphore, mutex, flock, postgres, redis, process\n",
                      file.string()));
}

TEST_CASE("--check-config: a free address, a named table, writable files: ok, nothing left",
          "[config]")
{
    const std::string name = fmt::format("check{}", ::getpid());
    auto [code, out] = check_config({"--lock-mode", "semaphore", "--lock-name", name});
    CHECK(code == 0);
    CHECK(out == "configuration ok\n"); // no "Booting worker", no "Listening at"
    CHECK(named_table_entries(name) == 0);
}

TEST_CASE("--check-config: an address in use, a table a live server holds, a lock server that is "
          "down: exit 2 with the reason",
          "[config]")
{
    const std::string name = fmt::format("checkheld{}", ::getpid());
    ServerProcess live({"--lock-mode", "mutex", "--lock-name", name}, 1);
    const std::string bound = fmt::format("127.0.0.1:{}", live.port());

    auto [in_use, in_use_out] = check_config({"-b", bound});
    CHECK(in_use == 2);
    CHECK(in_use_out.starts_with("forklock: error: --bind: "));
    CHECK(in_use_out.find("Address already in use") != std::string::npos);

    auto [held, held_out] = check_config({"--lock-mode", "mutex", "--lock-name", name});
    CHECK(held == 2);
    CHECK(held_out.find(name) != std::string::npos);
    CHECK(named_table_entries(name) > 0); // the live server's table is untouched

    auto [down, down_out] = check_config(
        {"--lock-mode", "postgres", "--lock-url", "host=/nonexistent-forklock dbname=x"});
    CHECK(down == 2);
    CHECK(down_out.starts_with("forklock: error: --lock-url: "));
    for (const auto& out : {in_use_out, held_out, down_out})
        CHECK(std::count(out.begin(), out.end(), '\n') == 1);
}

TEST_CASE("Server config file: a change the reload refuses is undone whole and tried again",
          "[config]")
{
    const std::string name = fmt::format("cfgrefuse{}", ::getpid());
    const std::string head = fmt::format("bind = \"127.0.0.1:0\"\nlock-name = \"{}\"\n", name);
    ConfiguredServer s(head + "lock-mode = \"mutex\"\n", 1);
    ServerProcess& server = *s.server;
    const std::set<pid_t> before = server.booted_worker_pids();
    // A named table keeps its mode while workers hold it: the master refuses the switch.
    write_file(s.file, head + "lock-mode = \"semaphore\"\n");
    const std::string change = "Config file: lock-mode: \"mutex\" -> \"semaphore\"";
    for (int hup = 1; hup <= 2; ++hup) {
        server.signal(SIGHUP);
        CHECK(wait_until([&] { return server.count_in_log("refused") == hup; }, 10s, 20ms));
        CHECK(server.count_in_log(change) == hup); // not taken as applied: the next HUP retries
    }
    CHECK(server.worker_pids() == before);
    CHECK(http_request(server.endpoint(), "GET", "/healthz").status == 200);
}
