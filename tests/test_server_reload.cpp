// The dashboard's controls on a real server: killing a key's holder, switching the lock mode and
// preload through the master's HUP, and who may do either.

#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <thread>

#include <fmt/format.h>

#include "harness/http_client.h"
#include "harness/server_process.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

HttpResponse post(const ServerProcess& server, const std::string& target,
                  std::chrono::milliseconds timeout = 10s)
{
    return http_request(server.endpoint(), "POST", target, timeout);
}

json workers(const ServerProcess& server)
{
    return http_request(server.endpoint(), "GET", "/workers").json();
}

// The owner of `key` in /locks, once some worker holds it (0 if none did within the deadline).
int wait_for_owner(const ServerProcess& server, const std::string& key)
{
    int owner = 0;
    (void)wait_until([&] {
        auto locks = http_request(server.endpoint(), "GET", "/locks").json();
        if (!locks.is_object()) return false;
        for (const auto& k : locks["keys"])
            if (k["key"] == key) owner = k["owner_pid"].get<int>();
        return owner != 0;
    });
    return owner;
}

// Every worker /workers lists runs `generation` in `mode`, with `preload`, and there are `count`.
bool all_workers_run(const ServerProcess& server, int generation, const std::string& mode,
                     bool preload, std::size_t count)
{
    auto w = workers(server);
    if (!w.is_object() || w["workers"].size() != count) return false;
    return std::all_of(w["workers"].begin(), w["workers"].end(), [&](const json& one) {
        return one.value("generation", -1) == generation && one.value("mode", "") == mode &&
               one.value("preload", !preload) == preload;
    });
}

// The death of `pid` in /workers' deaths, or null.
json death_of(const ServerProcess& server, int pid)
{
    auto w = workers(server);
    if (!w.is_object()) return nullptr;
    for (const auto& d : w["deaths"])
        if (d["pid"] == pid) return d;
    return nullptr;
}

} // namespace

TEST_CASE("Server: /control/kill of a key's holder is a death in /workers with the key, and the "
          "key works again (mutex --preload)",
          "[server][reload]")
{
    ServerProcess server({"-w", "2", "--preload", "--lock-mode", "mutex"}, 2);
    std::jthread holder([&] { (void)post(server, "/counter/k/increment?hold_ms=5000"); });
    const int owner = wait_for_owner(server, "k");
    REQUIRE(owner != 0);
    auto killed = server.control("/control/kill?key=k");
    REQUIRE(killed.status == 200);
    CHECK(killed.json() == json{{"killed", owner}, {"key", "k"}});
    holder.join(); // its connection died with the worker
    json death;
    REQUIRE(wait_until([&] { return !(death = death_of(server, owner)).is_null(); }));
    CHECK(death["signal"] == SIGKILL);
    CHECK(death["held"] == json::array({"k"}));
    CHECK(death["released"] == 1);
    CHECK(death["died_ns"].get<std::int64_t>() <= workers(server)["now_ns"].get<std::int64_t>());
    auto again = post(server, "/counter/k/increment?timeout_ms=2000");
    CHECK(again.status == 200);
    CHECK(again.json()["value"] == 1); // the killed increment never wrote
}

TEST_CASE("Server: /control/config thread -> mutex with preload: every worker runs the new "
          "generation, and a burst loses nothing",
          "[server][reload]")
{
    ServerProcess server({"-w", "3", "--lock-mode", "thread"}, 3);
    auto before = workers(server);
    CHECK(before["generation"] == 0);
    CHECK(before["mode"] == "thread");
    CHECK(before["safe"] == false);
    CHECK(before["controls"] == "loopback");
    REQUIRE(all_workers_run(server, 0, "thread", false, 3));
    auto asked = server.control("/control/config?mode=mutex&preload=true");
    REQUIRE(asked.status == 202);
    CHECK(asked.json() == json{{"mode", "mutex"},
                               {"preload", true},
                               {"workers", 3},
                               {"threads", 1},
                               {"generation", 1}});
    REQUIRE(wait_until([&] { return all_workers_run(server, 1, "mutex", true, 3); }, 15s));
    auto after = workers(server);
    CHECK(after["generation"] == 1);
    CHECK(after["mode"] == "mutex");
    CHECK(after["preload"] == true);
    CHECK(after["workers_target"] == 3);
    CHECK(after["safe"] == true);
    CHECK(after["restarts"] == 0); // the old workers retired; none died
    constexpr int kBurst = 48;
    auto replies = concurrent_requests(
        server.endpoint(), {"POST", "/counter/burst/increment?hold_ms=2", {}, {}}, kBurst, 20s);
    CHECK(std::all_of(replies.begin(), replies.end(), [](auto& r) { return r.status == 200; }));
    CHECK(http_request(server.endpoint(), "GET", "/counter/burst").json()["value"] == kBurst);
}

TEST_CASE("Server: a worker draining after a config switch keeps its old table: killed there, "
          "the master frees its key in that table",
          "[server][reload]")
{
    ServerProcess server({"-w", "2", "--preload", "--lock-mode", "mutex"}, 2);
    std::jthread holder([&] { (void)post(server, "/counter/k/increment?hold_ms=5000"); });
    const int owner = wait_for_owner(server, "k");
    REQUIRE(owner != 0);
    REQUIRE(server.control("/control/config?mode=semaphore").status == 202);
    // Two new workers with a new table; the old holder drains, still in the scoreboard.
    REQUIRE(wait_until([&] {
        auto w = workers(server);
        if (!w.is_object()) return false;
        int fresh = 0;
        for (const auto& one : w["workers"]) fresh += one.value("generation", 0) == 1;
        auto pids = server.worker_pids(); // the other old worker gone: it drained at once
        return fresh == 2 && pids.size() == 3 && pids.count(owner) == 1;
    }));
    CHECK(http_request(server.endpoint(), "GET", "/locks").json()["mode"] == "semaphore");
    REQUIRE(server.control(fmt::format("/control/kill?pid={}", owner)).status == 200);
    holder.join();
    json death;
    REQUIRE(wait_until([&] { return !(death = death_of(server, owner)).is_null(); }));
    CHECK(death["held"] == json::array({"k"})); // read from the old table, not the new one
    CHECK(death["released"] == 1);
    CHECK(post(server, "/counter/k/increment?timeout_ms=2000").status == 200);
}

TEST_CASE("Server: a HUP from kill(1) keeps the configuration and its generation",
          "[server][reload]")
{
    ServerProcess server({"-w", "2", "--lock-mode", "flock"}, 2);
    auto old = server.worker_pids();
    server.signal(SIGHUP);
    REQUIRE(wait_until([&] {
        auto now = server.booted_worker_pids(); // a new worker says its mode once booted
        return now.size() == 2 &&
               std::none_of(now.begin(), now.end(), [&](int p) { return old.count(p); });
    }));
    CHECK(all_workers_run(server, 0, "flock", false, 2));
    CHECK(workers(server)["generation"] == 0);
}

TEST_CASE("Server: --dashboard-controls token refuses a control without the token and takes it "
          "from the header only",
          "[server][reload]")
{
    ServerProcess server({"-w", "1", "--dashboard-controls", "token", "--dashboard-token", "t0ken"},
                         1);
    auto refused = post(server, "/control/kill?key=k");
    CHECK(refused.status == 403);
    CHECK(refused.json()["error"].get<std::string>().find("--dashboard-token") !=
          std::string::npos);
    CHECK(post(server, "/control/kill?key=k&token=nope").status == 403);
    // The query is no place for it (URLs end up in logs and history): refused, and told why.
    auto in_url = post(server, "/control/kill?key=k&token=t0ken");
    CHECK(in_url.status == 403);
    CHECK(in_url.json()["error"].get<std::string>().find("X-Forklock-Token header") !=
          std::string::npos);
    HttpRequest with_header{"POST", "/control/kill?key=k", {{"X-Forklock-Token", "t0ken"}}, {}};
    CHECK(http_request(server.endpoint(), with_header, 10s).status == 409); // admitted: no holder
    CHECK(workers(server)["controls"] == "token");
    CHECK(server.count_in_log("/dashboard?token=t0ken") == 1);
}

TEST_CASE("Server: without --dashboard-token the master logs a random 128-bit token",
          "[server][reload]")
{
    ServerProcess server({"-w", "1"}, 1);
    const std::string log = server.log();
    const auto at = log.find("/dashboard?token=");
    REQUIRE(at != std::string::npos);
    const std::string token = log.substr(at + 17, 32);
    CHECK(std::all_of(token.begin(), token.end(), [](char c) { return std::isxdigit(c); }));
    CHECK(log[at + 17 + 32] == ' ');
    CHECK(token != std::string(32, '0'));
}
