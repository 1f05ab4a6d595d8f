// The dashboard's controls and /pair/increment as plain functions: no sockets. Processes only
// where a control acts on one (a worker to kill, a master to HUP).

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/api.h"
#include "app/api_control.h"
#include "harness/child.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"

using namespace forklock;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

Options options_with(DashboardControls controls, std::string token = "s3cret")
{
    Options o;
    o.dashboard_controls = controls;
    o.dashboard_token = std::move(token);
    return o;
}

Request request(std::string query, std::string token, bool loopback,
                std::string path = "/control/kill")
{
    Request r{"POST", std::move(path), std::move(query)};
    r.token = std::move(token);
    r.from_loopback = loopback;
    return r;
}

// A worker's API over a table and scoreboard made here. `master` is the pid /control/config sends
// HUP to: never this test process.
struct Fixture {
    explicit Fixture(LockMode mode = LockMode::thread, pid_t master = 0,
                     Options o = options_with(DashboardControls::loopback))
        : table(LockTableOptions{mode, 8, true, {}, {}, false, {}}), scoreboard(master),
          options(std::move(o)),
          api(ApiContext{&table, &store, &scoreboard, ::getpid(), nullptr, nullptr, &options})
    {
    }
    Response post(const std::string& path, const std::string& query)
    {
        return api.handle(request(query, options.dashboard_token, true, path));
    }
    json body(const Response& r) const { return json::parse(r.body); }
    // A slot for `pid`, as the master claims one for a worker it forked.
    void enlist(pid_t pid) { scoreboard.slot(scoreboard.claim(1).value()).pid = pid; }

    harness::TempDir dir{"api-control"};
    LockTable table;
    CounterStore store{dir.path()};
    Scoreboard scoreboard;
    Options options;
    Api api;
};

} // namespace

TEST_CASE("tokens_equal: only the same bytes match, and an empty expected token matches nothing",
          "[api_control]")
{
    CHECK(tokens_equal("abc123", "abc123"));
    CHECK_FALSE(tokens_equal("abc124", "abc123"));
    CHECK_FALSE(tokens_equal("abc12", "abc123"));
    CHECK_FALSE(tokens_equal("abc1234", "abc123"));
    CHECK_FALSE(tokens_equal("", ""));
    CHECK_FALSE(tokens_equal("x", ""));
}

TEST_CASE("control_refusal: loopback and token admit the token's bearer only, wherever the peer "
          "is; off nobody",
          "[api_control]")
{
    const auto loopback = options_with(DashboardControls::loopback);
    const auto token = options_with(DashboardControls::token);
    const auto off = options_with(DashboardControls::off);
    for (const auto* o : {&loopback, &token}) {
        CHECK_FALSE(control_refusal(request("", "s3cret", true), o));
        CHECK_FALSE(control_refusal(request("", "s3cret", false), o));
        CHECK(control_refusal(request("", "", true), o)); // a loopback peer is not enough
        CHECK(control_refusal(request("", "wrong", false), o));
        CHECK(control_refusal(request("", "s3cre", true), o));
        // In the URL it is refused, with the reason: the header is the only place for it.
        const auto in_url = control_refusal(request("token=s3cret", "", true), o);
        REQUIRE(in_url);
        CHECK(in_url->find("X-Forklock-Token header") != std::string::npos);
    }
    CHECK(control_refusal(request("", "s3cret", true), &off));
    CHECK(control_refusal(request("", "", true), nullptr));
}

TEST_CASE("Api: a refused control is a 403 JSON naming the flags", "[api_control]")
{
    Fixture f;
    auto r = f.api.handle(request("key=k", "", false));
    REQUIRE(r.status == 403);
    const std::string why = f.body(r)["error"];
    CHECK(why.find("--dashboard-token") != std::string::npos);
    CHECK(why.find("--dashboard-controls") != std::string::npos);
    CHECK(f.api.handle(request("key=k", "s3cret", false)).status == 409); // admitted: no holder

    Fixture off(LockMode::thread, 0, options_with(DashboardControls::off));
    auto refused = off.api.handle(request("key=k", "s3cret", true));
    CHECK(refused.status == 403);
    CHECK(off.body(refused)["error"].get<std::string>().find("off") != std::string::npos);
}

TEST_CASE("Api: /control/kill refuses a key nobody holds, a key this worker holds, a stranger pid",
          "[api_control]")
{
    Fixture f;
    CHECK(f.post("/control/kill", "key=free").status == 409);
    CHECK(f.post("/control/kill", "").status == 400);
    CHECK(f.post("/control/kill", "key=a&pid=5").status == 400);
    CHECK(f.api.handle({"GET", "/control/kill", "key=a"}).status == 405);
    {
        KeyGuard mine = f.table.lock("mine");
        auto r = f.post("/control/kill", "key=mine");
        CHECK(r.status == 409);
        CHECK(f.body(r)["error"].get<std::string>().find("answering") != std::string::npos);
    }
    harness::Child stranger([] {
        ::pause();
        return 0;
    });
    CHECK(f.post("/control/kill", fmt::format("pid={}", stranger.pid())).status == 404);
    CHECK(f.post("/control/kill", "pid=1").status == 404);
    CHECK(stranger.wait(50ms) == -1); // still running until wait() gave up and killed it
}

TEST_CASE("Api: /control/kill SIGKILLs the live worker that holds the key", "[api_control]")
{
    Fixture f(LockMode::mutex);
    harness::Child holder([&] {
        KeyGuard held = f.table.lock("k");
        ::pause();
        return 0;
    });
    f.enlist(holder.pid());
    REQUIRE(harness::wait_until([&] { return f.table.owner("k") == holder.pid(); }));
    auto r = f.post("/control/kill", "key=k");
    REQUIRE(r.status == 200);
    CHECK(f.body(r) == json{{"killed", holder.pid()}, {"key", "k"}});
    CHECK(holder.wait() == 128 + SIGKILL);
}

TEST_CASE("Api: /control/kill?pid= kills a worker of this server", "[api_control]")
{
    Fixture f;
    harness::Child worker([] {
        ::pause();
        return 0;
    });
    f.enlist(worker.pid());
    auto r = f.post("/control/kill", fmt::format("pid={}", worker.pid()));
    REQUIRE(r.status == 200);
    CHECK(f.body(r)["killed"] == worker.pid());
    CHECK(worker.wait() == 128 + SIGKILL);
}

TEST_CASE("Api: /control/config refuses what the command line refuses", "[api_control]")
{
    Fixture f;
    for (std::string query : {"", "mode=spinlock", "preload=maybe", "workers=0", "workers=257",
                              "threads=0", "threads=65", "workers=two"}) {
        INFO(query);
        auto r = f.post("/control/config", query);
        CHECK(r.status == 400);
        CHECK(f.body(r).contains("error"));
    }
    f.options.lock_slots = LockTable::kMaxSemaphoreCapacity + 1;
    CHECK(f.post("/control/config", "mode=semaphore").status == 400);
    CHECK(f.scoreboard.requested_config().generation == 0); // nothing was asked of the master
}

namespace {

// A stand-in master, forked after the fixture so that it shares its scoreboard: on HUP it gives
// `verdict` the requested configuration (applies it, or refuses it with a reason), then exits 7.
// HUP is blocked across the fork, so an early HUP waits for sigwait() instead of killing it.
harness::Child stand_in_master(Fixture& f, std::function<void(const ServerConfig&)> verdict)
{
    sigset_t hup, before;
    ::sigemptyset(&hup);
    ::sigaddset(&hup, SIGHUP);
    ::pthread_sigmask(SIG_BLOCK, &hup, &before);
    harness::Child master([&] {
        int sig = 0;
        if (::sigwait(&hup, &sig) != 0 || sig != SIGHUP) return 1;
        verdict(f.scoreboard.requested_config());
        return 7;
    });
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    f.scoreboard.totals().master_pid = master.pid();
    return master;
}

} // namespace

TEST_CASE("Api: /control/config records the request with a generation, HUPs the master and "
          "answers 202 once it applied it",
          "[api_control]")
{
    Fixture f;
    ServerConfig start{0, LockMode::thread, false, 4, 1};
    f.scoreboard.publish_config(start);
    auto master =
        stand_in_master(f, [&](const ServerConfig& c) { f.scoreboard.publish_config(c); });
    auto r = f.post("/control/config", "mode=mutex&preload=true");
    REQUIRE(r.status == 202);
    CHECK(f.body(r) == json{{"mode", "mutex"},
                            {"preload", true},
                            {"workers", 4},
                            {"threads", 1},
                            {"generation", 1}});
    CHECK(f.scoreboard.requested_config() == ServerConfig{1, LockMode::mutex, true, 4, 1});
    CHECK(f.scoreboard.applied_config() == ServerConfig{1, LockMode::mutex, true, 4, 1});
    CHECK(master.wait() == 7);
}

TEST_CASE("Api: /control/config the master refuses is a 409 with its reason, without its paths",
          "[api_control]")
{
    Fixture f;
    ServerConfig start{0, LockMode::mutex, false, 2, 1};
    f.scoreboard.publish_config(start);
    auto master = stand_in_master(f, [&](const ServerConfig& c) {
        f.scoreboard.refuse_config(c.generation,
                                   "PostgreSQL connect: connection to server on socket "
                                   "\"/tmp/pg.x/.s.PGSQL.5432\" failed: No such file or directory");
        f.scoreboard.publish_config(ServerConfig{c.generation, LockMode::mutex, false, 2, 1});
    });
    f.options.lock_url = "host=/tmp/pg.x";
    auto r = f.post("/control/config", "mode=postgres");
    INFO(r.body);
    REQUIRE(r.status == 409);
    const std::string error = f.body(r)["error"];
    CHECK(error.find("configuration 1 was refused") == 0);
    CHECK(error.find("socket \".s.PGSQL.5432\" failed") != std::string::npos);
    CHECK(error.find("/tmp") == std::string::npos);
    CHECK(master.wait() == 7);
}

namespace {

// pair(first, second) and pair(second, first) at once from two threads; the responses.
std::pair<Response, Response> crossed_pairs(Fixture& f, const std::string& extra)
{
    Response ab, ba;
    const std::string q = "hold_ms=300&timeout_ms=600" + extra;
    std::thread one([&] { ab = f.post("/pair/increment", "first=a&second=b&" + q); });
    std::thread two([&] { ba = f.post("/pair/increment", "first=b&second=a&" + q); });
    one.join();
    two.join();
    return {ab, ba};
}

} // namespace

TEST_CASE("Api: /pair/increment locks both keys and increments both counters", "[api_control]")
{
    Fixture f;
    auto r = f.post("/pair/increment", "first=x&second=y");
    REQUIRE(r.status == 200);
    auto b = f.body(r);
    CHECK(b["first"] == json{{"key", "x"}, {"value", 1}});
    CHECK(b["second"] == json{{"key", "y"}, {"value", 1}});
    CHECK(f.store.read("x") == 1);
    CHECK(f.store.read("y") == 1);
    CHECK(f.post("/pair/increment", "first=x&second=x").status == 400);
    CHECK(f.post("/pair/increment", "first=x").status == 400);
    CHECK(f.post("/pair/increment", "first=x&second=.bad").status == 400);
    CHECK(f.post("/pair/increment", "first=x&second=y&ordered=2").status == 400);
}

TEST_CASE("Api: crossed /pair/increments deadlock until the timeout and write nothing there",
          "[api_control]")
{
    Fixture f;
    auto [ab, ba] = crossed_pairs(f, "");
    // Both hold their first key and wait for the other's: at least one gives up (the other may
    // get its second key once the first gave its own back).
    const Response& failed = ab.status == 503 ? ab : ba;
    REQUIRE(failed.status == 503);
    const std::string why = f.body(failed)["error"];
    CHECK(why.find("deadlock") != std::string::npos);
    CHECK(why.find("timed out after 600 ms") != std::string::npos);
    const int done = (ab.status == 200) + (ba.status == 200);
    CHECK(f.store.read("a") == static_cast<std::uint64_t>(done));
    CHECK(f.store.read("b") == static_cast<std::uint64_t>(done));
}

TEST_CASE("Api: crossed /pair/increments with ordered=1 both succeed", "[api_control]")
{
    Fixture f;
    auto [ab, ba] = crossed_pairs(f, "&ordered=1");
    CHECK(ab.status == 200);
    CHECK(ba.status == 200);
    CHECK(f.body(ab)["first"]["key"] == "a");
    CHECK(f.body(ba)["first"]["key"] == "b");
    CHECK(f.store.read("a") == 2);
    CHECK(f.store.read("b") == 2);
}

TEST_CASE("Api: /workers reports the running configuration, the theory, the controls and the "
          "deaths",
          "[api_control]")
{
    Fixture f;
    f.scoreboard.publish_config({3, LockMode::semaphore, true, 4, 2});
    WorkerSlot& booted = f.scoreboard.slot(f.scoreboard.claim(2).value());
    booted.pid = 1111;
    booted.config = ServerConfig{3, LockMode::semaphore, true, 4, 2}.pack();
    f.enlist(2222); // still booting: no config written yet
    f.scoreboard.record_death({4242, 17, SIGKILL, 128 + SIGKILL, {"k"}, 1});
    auto r = f.api.handle({"GET", "/workers", ""});
    REQUIRE(r.status == 200);
    auto b = f.body(r);
    CHECK(b["generation"] == 3);
    CHECK(b["mode"] == "semaphore");
    CHECK(b["preload"] == true);
    CHECK(b["workers_target"] == 4);
    CHECK(b["threads"] == 2);
    CHECK(b["safe"] == true);
    CHECK(b["explain"] == std::string(explain(LockMode::semaphore)));
    CHECK(b["controls"] == "loopback");
    CHECK(b["now_ns"].get<std::int64_t>() > 0);
    CHECK(b["deaths"] == json::array({json{{"pid", 4242},
                                           {"died_ns", 17},
                                           {"signal", SIGKILL},
                                           {"status", 128 + SIGKILL},
                                           {"held", {"k"}},
                                           {"released", 1}}}));
    const auto& listed = b["workers"];
    REQUIRE(listed.size() == 2);
    CHECK(listed[0]["pid"] == 1111);
    CHECK(listed[0]["generation"] == 3);
    CHECK(listed[0]["mode"] == "semaphore");
    CHECK(listed[0]["preload"] == true);
    CHECK(listed[1]["pid"] == 2222);
    CHECK_FALSE(listed[1].contains("mode"));

    f.scoreboard.publish_config({3, LockMode::semaphore, false, 4, 2});
    CHECK(f.body(f.api.handle({"GET", "/workers", ""}))["safe"] == false);
}

TEST_CASE("Api: the index lists the controls and the pair", "[api_control]")
{
    Fixture f;
    const std::string index = f.api.handle({"GET", "/", ""}).body;
    CHECK(index.find("POST /control/kill") != std::string::npos);
    CHECK(index.find("POST /control/config") != std::string::npos);
    CHECK(index.find("POST /pair/increment") != std::string::npos);
}
