// The binary upgrade on a real server (nginx's USR2, WINCH, QUIT, and the rollback by HUP): both
// masters serve one socket, the pid file moves to .oldbin and back, and a new master that fails
// leaves the old one serving.

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <fmt/format.h>

#include "harness/http_client.h"
#include "harness/increment_load.h"
#include "harness/notify_socket.h"
#include "harness/server_process.h"
#include "harness/shm_names.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

std::string unique_name(const char* what)
{
    static int n = 0;
    return fmt::format("upg-{}-{}-{}", ::getpid(), what, n++);
}

pid_t read_pid(const std::filesystem::path& file)
{
    std::ifstream in(file);
    pid_t pid = 0;
    in >> pid;
    return pid;
}

// The pids of `pid`'s children (workers, and a new master the old one started).
std::set<pid_t> children_of(pid_t pid)
{
    std::ifstream in(fmt::format("/proc/{}/task/{}/children", pid, pid));
    std::set<pid_t> out;
    for (pid_t child = 0; in >> child;) out.insert(child);
    return out;
}

// Gone: no such process, or a zombie (a master orphaned by the test's exit of the old one
// re-parents to a PID 1 that may not reap it).
bool gone(pid_t pid)
{
    std::ifstream stat(fmt::format("/proc/{}/stat", pid));
    std::string line;
    if (!std::getline(stat, line)) return true;
    const auto paren = line.rfind(')');
    return paren == std::string::npos || line.substr(paren + 2, 1) == "Z";
}

// The master /workers answers from; 0 when it does not answer.
pid_t serving_master(const ServerProcess& server)
{
    auto w = http_request(server.endpoint(), "GET", "/workers").json();
    return w.is_object() ? w.value("master_pid", 0) : 0;
}

// Stops a new master (not the test's child) and waits for it and its workers to be gone.
void stop_new_master(pid_t pid)
{
    const auto workers = children_of(pid);
    ::kill(pid, SIGTERM);
    REQUIRE(wait_until([&] { return gone(pid); }, 20s, 10ms));
    for (pid_t w : workers) REQUIRE(wait_until([&] { return gone(w); }, 10s, 10ms));
}

// `script` installed over `binary` as `install` does: a new file renamed into place.
void install_over(const std::filesystem::path& binary, const std::string& script)
{
    const auto next = binary.string() + ".new";
    std::ofstream(next) << script;
    std::filesystem::permissions(next, std::filesystem::perms::owner_all);
    std::filesystem::rename(next, binary);
}

struct Upgraded {
    pid_t old_master = 0;
    pid_t new_master = 0;
};

// USR2 to `server`'s master, waiting until the new master serves (its line in the old log).
Upgraded upgrade(const ServerProcess& server, const std::filesystem::path& pid_file)
{
    Upgraded u{server.pid(), 0};
    server.signal(SIGUSR2);
    REQUIRE(server.wait_for_log("Upgrade: the new master", 30s));
    u.new_master = read_pid(pid_file);
    REQUIRE(u.new_master != u.old_master);
    REQUIRE(read_pid(pid_file.string() + ".oldbin") == u.old_master);
    return u;
}

ServerSpec spec_with_pid(std::vector<std::string> args, int workers, const std::string& pid)
{
    ServerSpec spec;
    spec.args = std::move(args);
    spec.args.insert(spec.args.end(), {"-p", pid});
    spec.workers = workers;
    return spec;
}

} // namespace

TEST_CASE("Upgrade: USR2, WINCH and QUIT under load hand the socket to the new master with no "
          "failed request and no lost increment (named mutex table, joined)",
          "[server][upgrade]")
{
    TempDir tmp("forklock-upgrade");
    const auto pid_file = tmp.path() / "forklock.pid";
    const std::string name = unique_name("load");
    {
        ServerProcess server(
            spec_with_pid({"-w", "2", "--lock-mode", "mutex", "--preload", "--lock-name", name}, 2,
                          pid_file.string()));
        IncrementLoad load(server.endpoint(), "up");
        REQUIRE(wait_until([&] { return load.acked() >= 20; }, 20s));
        const Upgraded u = upgrade(server, pid_file);
        CHECK(server.count_in_log("joined: shared with another live server") == 1);
        const auto before_winch = load.acked();
        server.signal(SIGWINCH);
        REQUIRE(
            wait_until([&] { return children_of(u.old_master) == std::set{u.new_master}; }, 30s));
        server.signal(SIGQUIT);
        REQUIRE(server.wait_exit(20s) == 0);
        REQUIRE(wait_until([&] { return load.acked() >= before_winch + 20; }, 20s));
        const auto failures = load.finish();
        CHECK(failures.empty());
        for (const auto& f : failures) UNSCOPED_INFO(f);
        CHECK(serving_master(server) == u.new_master);
        CHECK(children_of(u.new_master).size() == 2);
        auto value = http_request(server.endpoint(), "GET", "/counter/up").json()["value"];
        CHECK(value.get<std::uint64_t>() == load.acked());
        CHECK(!std::filesystem::exists(pid_file.string() + ".oldbin"));
        stop_new_master(u.new_master);
        CHECK(!std::filesystem::exists(pid_file));
    }
    CHECK(named_table_entries(name) == 0);
}

TEST_CASE("Upgrade: HUP after WINCH starts the old master's workers again, and QUIT to the new "
          "master rolls back with the pid file renamed back",
          "[server][upgrade]")
{
    TempDir tmp("forklock-upgrade");
    const auto pid_file = tmp.path() / "forklock.pid";
    ServerProcess server(spec_with_pid({"-w", "2", "--lock-mode", "flock"}, 2, pid_file.string()));
    const Upgraded u = upgrade(server, pid_file);
    server.signal(SIGWINCH);
    REQUIRE(wait_until([&] { return children_of(u.old_master) == std::set{u.new_master}; }, 30s));
    server.signal(SIGHUP);
    REQUIRE(wait_until([&] { return children_of(u.old_master).size() == 3; }, 30s));
    ::kill(u.new_master, SIGQUIT);
    REQUIRE(server.wait_for_log("Upgrade rolled back: the new master", 20s));
    REQUIRE(wait_until([&] { return gone(u.new_master); }, 20s));
    CHECK(read_pid(pid_file) == server.pid());
    CHECK(!std::filesystem::exists(pid_file.string() + ".oldbin"));
    REQUIRE(wait_until([&] { return serving_master(server) == server.pid(); }, 10s));
    CHECK(server.booted_worker_pids().size() == 2);
}

TEST_CASE("Upgrade: a new binary that exits at start leaves the old master serving, with one line",
          "[server][upgrade]")
{
    TempDir tmp("forklock-upgrade");
    const auto pid_file = tmp.path() / "forklock.pid";
    const auto binary = tmp.path() / "forklock";
    std::filesystem::copy_file(std::getenv("FORKLOCK_BIN"), binary);
    ServerSpec spec = spec_with_pid({"-w", "2"}, 2, pid_file.string());
    spec.binary = binary;
    ServerProcess server(spec);
    install_over(binary, "#!/bin/sh\necho 'new build: cannot start' >&2\nexit 1\n");
    const auto workers = server.booted_worker_pids();
    server.signal(SIGUSR2);
    REQUIRE(server.wait_for_log("Upgrade failed: the new master", 20s));
    CHECK(server.count_in_log("Upgrade failed") == 1);
    CHECK(server.count_in_log("exited with code 1 before it served; this master serves on") == 1);
    CHECK(read_pid(pid_file) == server.pid());
    CHECK(!std::filesystem::exists(pid_file.string() + ".oldbin"));
    CHECK(server.booted_worker_pids() == workers);
    CHECK(http_request(server.endpoint(), "POST", "/counter/k/increment").status == 200);
}

TEST_CASE("Upgrade: a new release that never serves, switched in by a symlink, is killed after "
          "--timeout and the old master serves on",
          "[server][upgrade]")
{
    TempDir tmp("forklock-upgrade");
    const auto release1 = tmp.path() / "forklock-1";
    const auto link = tmp.path() / "forklock";
    std::filesystem::copy_file(std::getenv("FORKLOCK_BIN"), release1);
    std::filesystem::create_symlink(release1, link);
    ServerSpec spec;
    spec.args = {"-w", "1", "--timeout", "2"};
    spec.binary = link;
    ServerProcess server(spec);
    const auto release2 = tmp.path() / "forklock-2";
    install_over(release2, "#!/bin/sh\nexec sleep 60\n");
    const auto next_link = tmp.path() / "forklock.link";
    std::filesystem::create_symlink(release2, next_link);
    std::filesystem::rename(next_link, link); // as `ln -sfn` does it, atomically
    server.signal(SIGUSR2);
    REQUIRE(server.wait_for_log("did not serve within --timeout; killing it", 20s));
    REQUIRE(wait_until([&] { return children_of(server.pid()).size() == 1; }, 10s));
    CHECK(server.count_in_log("Upgrade failed") == 1);
    CHECK(http_request(server.endpoint(), "POST", "/counter/k/increment").status == 200);
    server.signal(SIGUSR2); // the failed upgrade is over: a new one may start
    REQUIRE(wait_until([&] { return server.count_in_log("killing it") == 2; }, 20s));
    CHECK(server.count_in_log("Upgrade: started") == 2);
}

TEST_CASE("Upgrade: a second USR2 while one runs is ignored with one line", "[server][upgrade]")
{
    TempDir tmp("forklock-upgrade");
    const auto pid_file = tmp.path() / "forklock.pid";
    ServerProcess server(spec_with_pid({"-w", "1"}, 1, pid_file.string()));
    const Upgraded u = upgrade(server, pid_file);
    server.signal(SIGUSR2);
    REQUIRE(server.wait_for_log("USR2 ignored: an upgrade is already running", 10s));
    ::kill(u.new_master, SIGUSR2); // its old master still runs
    REQUIRE(server.wait_for_log("USR2 ignored: the master this one replaces", 10s));
    CHECK(server.count_in_log("Upgrade: started") == 1);
    CHECK(read_pid(pid_file) == u.new_master);
    stop_new_master(u.new_master);
    REQUIRE(server.wait_for_log("Upgrade rolled back", 10s));
    CHECK(read_pid(pid_file) == server.pid());
}

TEST_CASE("Upgrade: an anonymous preloaded mutex table refuses USR2 with one line",
          "[server][upgrade]")
{
    ServerProcess server({"-w", "1", "--lock-mode", "mutex", "--preload"}, 1);
    server.signal(SIGUSR2);
    REQUIRE(server.wait_for_log("USR2 ignored: the mutex lock table is anonymous", 10s));
    CHECK(server.count_in_log("Upgrade: started") == 0);
    CHECK(children_of(server.pid()).size() == 1);
}

TEST_CASE("Upgrade: the new master tells NOTIFY_SOCKET READY=1 with MAINPID= itself once it serves",
          "[server][upgrade]")
{
    TempDir tmp("forklock-upgrade");
    NotifySocket notify(tmp.path() / "notify");
    const auto pid_file = tmp.path() / "forklock.pid";
    ServerSpec spec = spec_with_pid({"-w", "1"}, 1, pid_file.string());
    spec.env = {"NOTIFY_SOCKET=" + notify.path().string()};
    ServerProcess server(spec);
    std::vector<std::string> seen;
    REQUIRE(notify.wait_for("READY=1", seen, 20s));
    const Upgraded u = upgrade(server, pid_file);
    auto ready = notify.wait_for("READY=1", seen, 20s);
    REQUIRE(ready);
    CHECK(has_line(*ready, fmt::format("MAINPID={}", u.new_master)));
    stop_new_master(u.new_master);
    // Stopped while its old master runs: a rollback, so no STOPPING=1 for the service; the old
    // master speaks for it again.
    auto back = notify.wait_for("READY=1", seen, 20s);
    REQUIRE(back);
    CHECK(has_line(*back, fmt::format("MAINPID={}", server.pid())));
    for (const auto& m : seen) CHECK(!has_line(m, "STOPPING=1"));
}

TEST_CASE("Upgrade: a WINCH right after USR2 stops the old workers once the new master serves",
          "[server][upgrade]")
{
    TempDir tmp("forklock-upgrade");
    const auto pid_file = tmp.path() / "forklock.pid";
    ServerProcess server(spec_with_pid({"-w", "2"}, 2, pid_file.string()));
    server.signal(SIGUSR2);
    REQUIRE(server.wait_for_log("Upgrade: started", 10s));
    server.signal(SIGWINCH); // most likely before the new master serves; after works too
    REQUIRE(server.wait_for_log("Upgrade: stopping this master's workers gracefully", 30s));
    const pid_t new_master = read_pid(pid_file);
    const std::string log = server.log();
    CHECK(log.find("Upgrade: the new master (pid") < log.find("Upgrade: stopping this master's"));
    REQUIRE(wait_until([&] { return children_of(server.pid()) == std::set{new_master}; }, 30s));
    CHECK(serving_master(server) == new_master);
    stop_new_master(new_master);
    // The new master gone, the old one starts its workers again.
    REQUIRE(wait_until([&] { return children_of(server.pid()).size() == 2; }, 30s));
}

TEST_CASE("Upgrade: WINCH without a new master is ignored with one line (a terminal's resize)",
          "[server][upgrade]")
{
    ServerProcess server({"-w", "2"}, 2);
    const auto workers = server.booted_worker_pids();
    server.signal(SIGWINCH);
    REQUIRE(server.wait_for_log("WINCH ignored: no new master runs", 10s));
    CHECK(server.booted_worker_pids() == workers);
}
