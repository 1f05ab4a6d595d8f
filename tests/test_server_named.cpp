// The server with --lock-name: workers that make their table after fork share it by name; a
// second live server on the name is refused (exit code 2) unless it shares on purpose; nothing
// stays in /dev/shm after the servers exit.

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "harness/http_client.h"
#include "harness/server_process.h"
#include "harness/shm_names.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

constexpr int kRequests = 8;
constexpr int kHoldMs = 60; // long enough that any two unexcluded increments overlap

std::string unique_name(const char* what)
{
    static int n = 0;
    return fmt::format("srv-{}-{}-{}", ::getpid(), what, n++);
}

std::uint64_t counter(const ServerProcess& server, const std::string& key)
{
    return http_request(server.endpoint(), "GET", "/counter/" + key)
        .json()["value"]
        .get<std::uint64_t>();
}

// The controls' token, given on the command line and sent as the dashboard sends it.
constexpr const char* kToken = "named-t0ken";

HttpResponse control(const ServerProcess& server, const std::string& target)
{
    return http_request(server.endpoint(),
                        HttpRequest{"POST", target, {{"X-Forklock-Token", kToken}}, {}}, 15s);
}

// Two workers in `mode` on `name`, whose controls take kToken.
ServerSpec controlled(const std::string& mode, const std::string& name,
                      const std::filesystem::path& data = {})
{
    ServerSpec spec;
    spec.args = {"-w", "2", "--lock-mode", mode, "--lock-name", name, "--dashboard-token", kToken};
    spec.workers = 2;
    spec.data_dir = data;
    return spec;
}

// A refused reload: /control/config answers 409 naming `reason`; the same workers serve on, in
// `mode`, and take increments.
void check_refused_switch(const ServerProcess& server, const std::string& query,
                          const std::string& reason, const std::string& mode)
{
    const auto before = server.worker_pids();
    REQUIRE(!before.empty());
    const auto r = control(server, "/control/config?" + query);
    INFO(r.body);
    CHECK(r.status == 409);
    CHECK(r.json().value("error", "").find(reason) != std::string::npos);
    CHECK(server.count_in_log("refused; the running configuration and its workers are kept") == 1);
    CHECK(server.worker_pids() == before);
    const auto w = http_request(server.endpoint(), "GET", "/workers").json();
    CHECK(w["mode"] == mode);
    CHECK(http_request(server.endpoint(), "POST", "/counter/after/increment").status == 200);
}

ServerSpec spec_for(std::vector<std::string> args, int workers,
                    const std::filesystem::path& data = {})
{
    ServerSpec spec;
    spec.args = std::move(args);
    spec.workers = workers;
    spec.data_dir = data;
    return spec;
}

} // namespace

TEST_CASE("Server: --lock-name without --preload loses no update across workers", "[server][named]")
{
    const std::string mode = GENERATE("mutex", "semaphore");
    INFO("mode " << mode);
    const std::string name = unique_name("race");
    {
        ServerProcess server({"-w", "4", "--lock-mode", mode, "--lock-name", name}, 4);
        CHECK(server.log().find("[WARNING]") == std::string::npos);
        CHECK(server.log().find(fmt::format("Lock table '{}'", name)) != std::string::npos);
        const HttpRequest increment{
            "POST", "/counter/k/increment?hold_ms=" + std::to_string(kHoldMs), {}, {}};
        int ok = 0;
        for (const auto& r : concurrent_requests(server.endpoint(), increment, kRequests, 30s))
            ok += r.status == 200;
        CHECK(ok == kRequests);
        CHECK(counter(server, "k") == static_cast<std::uint64_t>(kRequests));
        CHECK(named_table_entries(name) > 0);
    }
    CHECK(named_table_entries(name) == 0); // the master, the last user, removed every name
}

TEST_CASE("Server: a second live server on one --lock-name exits with code 2 unless it shares",
          "[server][named]")
{
    const std::string name = unique_name("second");
    TempDir data;
    {
        ServerProcess first(
            spec_for({"-w", "2", "--lock-mode", "mutex", "--lock-name", name}, 2, data.path()));
        {
            ServerSpec spec =
                spec_for({"--lock-mode", "mutex", "--lock-name", name}, 0, data.path());
            spec.refused = true;
            ServerProcess refused(spec);
            REQUIRE(refused.wait_exit(10s) == 2);
            CHECK(refused.log().find("is in use by a live server") != std::string::npos);
            CHECK(refused.log().find("--lock-share") != std::string::npos);
            CHECK(refused.log().find("Booting worker") == std::string::npos); // before fork
            CHECK(refused.log().find("Listening at") == std::string::npos);   // and before bind
        }
        ServerProcess second(
            spec_for({"-w", "2", "--lock-mode", "mutex", "--lock-name", name, "--lock-share"}, 2,
                     data.path()));
        CHECK(second.log().find("joined") != std::string::npos);
        // Increments alternate between the two servers on one data directory: one table.
        const HttpRequest increment{
            "POST", "/counter/k/increment?hold_ms=" + std::to_string(kHoldMs), {}, {}};
        std::vector<std::thread> clients;
        for (const ServerProcess* server : {&first, &second})
            clients.emplace_back([&, server] {
                concurrent_requests(server->endpoint(), increment, kRequests / 2, 30s);
            });
        for (auto& c : clients) c.join();
        CHECK(counter(first, "k") == static_cast<std::uint64_t>(kRequests));
    }
    CHECK(named_table_entries(name) == 0);
}

TEST_CASE("Server: a --lock-name left by a server killed -9 is rebuilt at the next start",
          "[server][named]")
{
    const std::string name = unique_name("stale");
    {
        ServerProcess killed({"-w", "1", "--lock-mode", "semaphore", "--lock-name", name}, 1);
        ::kill(-killed.pid(), SIGKILL); // the master and its worker: no destructor runs
        REQUIRE(killed.wait_exit(10s).has_value());
    }
    REQUIRE(named_table_entries(name) > 0);
    {
        ServerProcess next({"-w", "2", "--lock-mode", "semaphore", "--lock-name", name}, 2);
        CHECK(next.log().find("rebuilt") != std::string::npos);
        CHECK(http_request(next.endpoint(), "POST", "/counter/k/increment").status == 200);
    }
    CHECK(named_table_entries(name) == 0);
}

TEST_CASE("Server: /control/config refuses a switch to a --lock-name another live server holds, "
          "and the old workers keep serving",
          "[server][named]")
{
    const std::string name = unique_name("switch");
    TempDir data;
    {
        ServerProcess holder(
            spec_for({"-w", "1", "--lock-mode", "mutex", "--lock-name", name}, 1, data.path()));
        // flock shares lock files by path: the name has no effect until a switch to mutex.
        ServerProcess server(controlled("flock", name, data.path()));
        check_refused_switch(server, "mode=mutex", "is in use by a live server", "flock");
    }
    CHECK(named_table_entries(name) == 0);
}

TEST_CASE("Server: /control/config refuses to change the mode of a live named table, and the "
          "old workers keep serving",
          "[server][named]")
{
    const std::string name = unique_name("mode");
    {
        ServerProcess server(controlled("mutex", name));
        check_refused_switch(server, "mode=semaphore", "keeps its lock mode", "mutex");
    }
    CHECK(named_table_entries(name) == 0);
}

TEST_CASE("Server: /control/config from flock to mutex claims a free --lock-name in the master, "
          "and it is gone after the server",
          "[server][named]")
{
    const std::string name = unique_name("claim");
    {
        ServerProcess server(controlled("flock", name));
        CHECK(named_table_entries(name) == 0); // flock: the name has no effect yet
        const auto r = control(server, "/control/config?mode=mutex");
        INFO(r.body);
        REQUIRE(r.status == 202);
        CHECK(named_table_entries(name) > 0); // made by the master before it answered
        REQUIRE(wait_until(
            [&] {
                const auto w = http_request(server.endpoint(), "GET", "/workers").json();
                if (!w.is_object() || w["workers"].size() != 2) return false;
                for (const auto& one : w["workers"])
                    if (one.value("generation", 0) != 1 || one.value("mode", "") != "mutex")
                        return false;
                return true;
            },
            15s));
        const HttpRequest increment{
            "POST", "/counter/k/increment?hold_ms=" + std::to_string(kHoldMs), {}, {}};
        concurrent_requests(server.endpoint(), increment, kRequests, 30s);
        CHECK(counter(server, "k") == static_cast<std::uint64_t>(kRequests));
    }
    CHECK(named_table_entries(name) == 0);
}
