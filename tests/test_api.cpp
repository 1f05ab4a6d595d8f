// The HTTP handlers as plain functions: no sockets, no processes.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/api.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"

using namespace forklock;
using nlohmann::json;

namespace {

struct Fixture {
    harness::TempDir dir{"api"};
    LockTable table{LockTableOptions{LockMode::thread, 8, true, {}, {}, false, {}}};
    CounterStore store{dir.path()};
    Scoreboard scoreboard{::getpid()};
    Api api{ApiContext{&table, &store, &scoreboard, ::getpid()}};

    Response call(const std::string& method, const std::string& path, const std::string& query = "")
    {
        return api.handle(Request{method, path, query});
    }
    json body(const Response& r) const { return json::parse(r.body); }
};

} // namespace

TEST_CASE("Api: POST increment adds one and reports who, how long and under which lock", "[api]")
{
    Fixture f;
    auto r = f.call("POST", "/counter/k/increment");
    REQUIRE(r.status == 200);
    CHECK(r.content_type == "application/json");
    auto b = f.body(r);
    CHECK(b["key"] == "k");
    CHECK(b["value"] == 1);
    CHECK(b["pid"] == ::getpid());
    CHECK(b["lock_mode"] == "thread");
    CHECK(b["waited_ms"].get<double>() >= 0);
    CHECK(b["held_ms"].get<double>() >= 0);
    CHECK(b["recovered_from"] == 0);
    CHECK(f.body(f.call("POST", "/counter/k/increment", "hold_ms=1"))["value"] == 2);
    CHECK(f.body(f.call("GET", "/counter/k"))["value"] == 2);
    CHECK(f.scoreboard.totals().increments == 2);
}

TEST_CASE("Api: GET reads 0 for a new key, DELETE resets to 0", "[api]")
{
    Fixture f;
    CHECK(f.body(f.call("GET", "/counter/never")) == json{{"key", "never"}, {"value", 0}});
    f.call("POST", "/counter/k/increment");
    auto r = f.call("DELETE", "/counter/k");
    CHECK(r.status == 200);
    CHECK(f.body(r) == json{{"key", "k"}, {"value", 0}});
    CHECK(f.body(f.call("GET", "/counter/k"))["value"] == 0);
}

TEST_CASE("Api: invalid keys are 400 with a JSON error", "[api]")
{
    Fixture f;
    for (std::string key : std::vector<std::string>{".hidden", "..", "a%2Fb", "sp%20ace",
                                                    std::string(129, 'x'), "a$b"}) {
        auto r = f.call("POST", "/counter/" + key + "/increment");
        INFO(key);
        CHECK(r.status == 400);
        CHECK(f.body(r).contains("error"));
    }
    CHECK(f.call("GET", "/counter/").status == 400);
    CHECK(f.call("GET", "/counter/" + std::string(128, 'x')).status == 200);
}

TEST_CASE("Api: hold_ms and timeout_ms must be integers in range", "[api]")
{
    Fixture f;
    for (std::string q :
         {"hold_ms=-1", "hold_ms=60001", "hold_ms=abc", "hold_ms=", "hold_ms=1.5", "hold_ms",
          "timeout_ms=0", "timeout_ms=60001", "timeout_ms=x", "hold_ms=99999999999999999999"}) {
        auto r = f.call("POST", "/counter/k/increment", q);
        INFO(q);
        CHECK(r.status == 400);
        CHECK(f.body(r)["error"].get<std::string>().find("must be an integer") !=
              std::string::npos);
    }
    CHECK(f.call("POST", "/counter/k/increment", "other=1&hold_ms=0").status == 200);
}

TEST_CASE("Api: unknown paths are 404, wrong methods 405 with Allow", "[api]")
{
    Fixture f;
    for (std::string path :
         {"/nope", "/counter", "/counter/k/decrement", "/counter/k/increment/x", "/healthz/", "//"})
        CHECK(f.call("GET", path).status == 404);
    auto r = f.call("GET", "/counter/k/increment");
    CHECK(r.status == 405);
    CHECK(r.headers == decltype(r.headers){{"Allow", "POST"}});
    r = f.call("PUT", "/counter/k");
    CHECK(r.status == 405);
    CHECK(r.headers[0].second == "GET, HEAD, DELETE");
    CHECK(f.call("POST", "/healthz").status == 405);
    CHECK(f.body(f.call("DELETE", "/locks")).contains("error"));
}

// Found by tests/fuzz/fuzz_api: a parameter name that is not UTF-8 made the 400's JSON dump throw
// inside handle()'s catch, which terminated the worker; a path or method gave a 500.
TEST_CASE("Api: bytes that are not UTF-8 get their JSON error, not a crash or a 500", "[api]")
{
    Fixture f;
    TraceRing trace(TraceRing::kMinCapacity);
    Api traced{ApiContext{&f.table, &f.store, &f.scoreboard, ::getpid(), &trace}};
    auto r = traced.handle(Request{"GET", "/trace", "since=0&li\xff\xff=1"});
    CHECK(r.status == 400);
    CHECK(f.body(r)["error"] == "unknown parameter 'li\uFFFD\uFFFD'");
    r = f.call("GET", "/no\xc3");
    CHECK(r.status == 404);
    CHECK(f.body(r).contains("error"));
    r = f.call("G\xe9T", "/healthz");
    CHECK(r.status == 405);
    CHECK(f.body(r).contains("error"));
}

TEST_CASE("Api: timeout_ms gives 503 with the owner's pid when the key stays held", "[api]")
{
    Fixture f;
    // A jthread: a failed REQUIRE unwinds through it, which joins (a std::thread would terminate).
    std::jthread holder([&] { f.call("POST", "/counter/k/increment", "hold_ms=400"); });
    REQUIRE(harness::wait_until(
        [&] { return f.table.key_stats().size() == 1 && f.table.key_stats()[0].owner_pid != 0; }));
    auto r = f.call("POST", "/counter/k/increment", "timeout_ms=20");
    holder.join();
    CHECK(r.status == 503);
    auto b = f.body(r);
    CHECK(b["error"] == "timed out after 20 ms waiting for the lock on 'k'");
    CHECK(b["owner_pid"] == ::getpid());
    CHECK(f.body(f.call("GET", "/counter/k"))["value"] == 1);
}

TEST_CASE("Api: a full lock table is a 503, not a crash", "[api]")
{
    const harness::TempDir dir("api-full");
    LockTable table{LockTableOptions{LockMode::thread, 1, true, {}, {}, false, {}}};
    CounterStore store{dir.path()};
    Api api{ApiContext{&table, &store, nullptr, ::getpid()}};
    std::jthread holder([&] { api.handle({"POST", "/counter/a/increment", "hold_ms=300"}); });
    REQUIRE(harness::wait_until([&] { return table.stats().active == 1; }));
    auto r = api.handle({"POST", "/counter/b/increment", ""});
    holder.join();
    CHECK(r.status == 503);
    CHECK(json::parse(r.body).contains("error"));
}

TEST_CASE("Api: /locks, /workers, /metrics, /healthz and / describe the server", "[api]")
{
    Fixture f;
    f.call("POST", "/counter/k/increment");
    auto locks = f.body(f.call("GET", "/locks"));
    CHECK(locks["mode"] == "thread");
    CHECK(locks["capacity"] == 8);
    CHECK(locks["keys_in_use"] == 1);
    CHECK(locks["keys"][0]["key"] == "k");
    CHECK(locks["keys"][0]["acquisitions"] == 1);
    for (std::string field :
         {"pid", "shared", "active", "keys_high_water", "evictions", "full_errors", "recoveries"}) {
        INFO(field);
        CHECK(locks.contains(field));
    }
    auto slot = f.scoreboard.claim(1).value();
    f.scoreboard.slot(slot).pid = 4242;
    auto workers = f.body(f.call("GET", "/workers"));
    CHECK(workers["master_pid"] == ::getpid());
    CHECK(workers["workers"][0]["pid"] == 4242);
    CHECK(workers["workers"][0]["state"] == "booting");
    CHECK(workers["workers"][0]["in_flight"] == 0);
    CHECK(workers["restarts"] == 0);
    // An idle worker whose threads serve two requests is busy, with both in flight.
    f.scoreboard.slot(slot).state = static_cast<std::uint32_t>(WorkerState::idle);
    f.scoreboard.slot(slot).busy_threads = 2;
    workers = f.body(f.call("GET", "/workers"));
    CHECK(workers["workers"][0]["state"] == "busy");
    CHECK(workers["workers"][0]["in_flight"] == 2);
    auto metrics = f.call("GET", "/metrics");
    CHECK(metrics.content_type.starts_with("text/plain"));
    CHECK(metrics.body.find("forklock_increments_total 1\n") != std::string::npos);
    CHECK(metrics.body.find("forklock_lock_acquisitions_total{key=\"k\"} 1\n") !=
          std::string::npos);
    CHECK(f.body(f.call("GET", "/healthz")) == json{{"status", "ok"}});
    CHECK(f.call("GET", "/").status == 200);
    CHECK(f.call("HEAD", "/healthz").status == 200);
}

TEST_CASE("Api: a counter file the server cannot use is a 500 naming the key, not the data "
          "directory",
          "[api]")
{
    Fixture f;
    std::filesystem::create_directory(f.dir.path() / "sub"); // a directory where a file belongs
    std::ofstream(f.dir.path() / "bad") << "12x\n";          // corrupt
    for (const auto& [path, said] : {std::pair{"/counter/sub/increment", "Is a directory"},
                                     std::pair{"/counter/bad/increment", "corrupt"}}) {
        INFO(path);
        const auto r = f.call("POST", path);
        CHECK(r.status == 500);
        const std::string error = f.body(r)["error"];
        CHECK(error.find(said) != std::string::npos);
        CHECK(error.find(f.dir.path().string()) == std::string::npos);
        CHECK(error.find('/') == std::string::npos);
    }
}
