// The real server in --lock-mode redis against a throwaway redis-server (harness/redis_server.h):
// workers made without --preload exclude each other through it; a Redis that is down answers 503
// and service resumes once it is back; a Redis unreachable at start or a malformed --lock-url
// stops the server with code 2 before fork; /locks shows the holders with their lease left; a
// lease that runs out mid-increment lets a waiter in, and --fencing refuses the late write
// (semaphore mode's lease: test_server_fence.cpp).
// Skipped (exit 77) without redis-server.

#include <signal.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <vector>

#include "harness/http_client.h"
#include "harness/redis_server.h"
#include "harness/server_checks.h"
#include "harness/server_process.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

RedisServer& redis() // one for the binary, made on the main thread
{
    if (!RedisServer::available()) {
        std::puts("SKIP: the redis tests need redis-server (apt-get install redis-server)");
        std::exit(77);
    }
    static RedisServer server;
    return server;
}

// held: whether GET /locks lists `key` as granted by Redis.
bool held(const ServerProcess& server, const std::string& key)
{
    const HttpResponse locks = http_request(server.endpoint(), "GET", "/locks", 1s);
    if (locks.status != 200) return false;
    for (const auto& h : locks.json().value("holders", nlohmann::json::array()))
        if (h.value("key", "") == key && h.value("state", "") == "granted") return true;
    return false;
}

struct LateWrite {
    HttpResponse late;  // waited 3 leases after its last check before it wrote
    HttpResponse taker; // took the key after the lease and wrote first
    int lost_lock_records = 0; // /trace records of the key with outcome lost_lock
};

// -w 2 --threads 1: the late increment's worker is busy inside it, so the taker reaches the
// other worker and must wait out the 1 s lease in Redis.
LateWrite late_write(bool fencing)
{
    std::vector<std::string> args{"-w",          "2",           "--threads", "1",
                                  "--preload",   "--lock-mode", "redis",     "--lock-lease-ms",
                                  "1000",        "--lock-url",  redis().url()};
    if (fencing) args.emplace_back("--fencing");
    ServerProcess server(args, 2);
    LateWrite out;
    auto late = std::async(std::launch::async, [&] {
        return http_request(server.endpoint(), "POST",
                            "/counter/leased/increment?write_delay_ms=3000", 30s);
    });
    REQUIRE(wait_until([&] { return held(server, "leased"); }, 10s, 10ms));
    out.taker = http_request(server.endpoint(), "POST",
                             "/counter/leased/increment?timeout_ms=10000", 30s);
    out.late = late.get();
    INFO("taker: " << out.taker.body << "\nlate: " << out.late.body);
    REQUIRE(out.taker.status == 200);
    CHECK(out.taker.json()["value"] == 1);
    // Both wrote 1 without fencing (the taker's acknowledged increment is gone); one did with it.
    CHECK(counter_value(server, "leased") == 1);
    const auto trace = http_request(server.endpoint(), "GET", "/trace?key=leased").json();
    for (const auto& r : trace["records"])
        out.lost_lock_records += r["outcome"] == "lost_lock" ? 1 : 0;
    return out;
}

} // namespace

TEST_CASE("Server: redis mode with 4 workers loses no concurrent increment, with or without "
          "--preload",
          "[server][redis]")
{
    const bool preload = GENERATE(false, true);
    INFO("preload " << preload);
    std::vector<std::string> args{"-w", "4", "--lock-mode", "redis", "--lock-url", redis().url()};
    if (preload) args.push_back("--preload");
    ServerProcess server(args, 4);
    const HttpRequest increment{"POST", "/counter/rd/increment?hold_ms=2", {}, {}};
    int ok = 0;
    for (const auto& r : concurrent_requests(server.endpoint(), increment, 64, 60s))
        ok += r.status == 200;
    CHECK(ok == 64);
    CHECK(counter_value(server, "rd") == 64);
}

TEST_CASE("Server: a Redis killed while serving answers 503 in JSON, and service resumes after "
          "it is back",
          "[server][redis]")
{
    ServerProcess server({"-w", "2", "--lock-mode", "redis", "--lock-url", redis().url()}, 2);
    REQUIRE(http_request(server.endpoint(), "POST", "/counter/down/increment").status == 200);
    redis().stop(SIGKILL);
    const HttpResponse down = http_request(server.endpoint(), "POST", "/counter/down/increment");
    INFO(down.body);
    CHECK(down.status == 503);
    CHECK(down.json()["error"].get<std::string>().find("the lock server is unavailable: redis") !=
          std::string::npos);
    CHECK(down.body.find(redis().socket().parent_path().string()) == std::string::npos);
    CHECK(http_request(server.endpoint(), "GET", "/locks").status == 503);
    redis().start();
    CHECK(wait_until(
        [&] {
            return http_request(server.endpoint(), "POST", "/counter/down/increment").status == 200;
        },
        20s, 50ms));
    CHECK(counter_value(server, "down") == 2);
}

TEST_CASE("Server: a Redis unreachable at start or a malformed --lock-url exits with code 2",
          "[server][redis]")
{
    const std::string down =
        refused({"--lock-mode", "redis", "--lock-url", redis().url() + ".missing"});
    CHECK(down.find("--lock-url: redis: cannot connect to") != std::string::npos);
    const std::string bad = refused({"--lock-mode", "redis", "--lock-url", "redis://h:99999"});
    CHECK(bad.find("--lock-url: redis URL 'redis://h:99999': port") != std::string::npos);
    const std::string none = refused({"--lock-mode", "redis"});
    CHECK(none.find("--lock-mode redis: needs --lock-url") != std::string::npos);
}

TEST_CASE("Server: /locks in redis mode shows a holder with its lease left and its token",
          "[server][redis]")
{
    ServerProcess server({"-w", "2", "--lock-mode", "redis", "--lock-url", redis().url()}, 2);
    auto holder = std::async(std::launch::async, [&] {
        return http_request(server.endpoint(), "POST", "/counter/held/increment?hold_ms=3000");
    });
    nlohmann::json shown;
    REQUIRE(wait_until(
        [&] {
            const auto body = http_request(server.endpoint(), "GET", "/locks").json();
            for (const auto& h : body["holders"])
                if (h["key"] == "held") shown = h;
            return !shown.is_null();
        },
        10s, 20ms));
    INFO(shown.dump());
    CHECK(shown["state"] == "granted");
    CHECK(shown["ttl_ms"].get<long>() > 0);
    CHECK(shown["ttl_ms"].get<long>() <= 30'000);
    CHECK(shown["token"].get<long>() > 0);
    CHECK(server.worker_pids().count(shown["pid"].get<pid_t>()) == 1);
    const auto answer = holder.get();
    REQUIRE(answer.status == 200);
    // The key's last token in /locks is Redis's own (INCR), the one the increment answered. The
    // keys' counts are each worker's own (no --preload): ask until the holder's worker answers.
    const nlohmann::json done = answer.json();
    std::uint64_t last_token = 0;
    REQUIRE(wait_until(
        [&] {
            const nlohmann::json locks = http_request(server.endpoint(), "GET", "/locks").json();
            if (locks["pid"] != done["pid"]) return false;
            for (const auto& k : locks["keys"])
                if (k["key"] == "held") last_token = k["last_token"].get<std::uint64_t>();
            return true;
        },
        10s, 20ms));
    CHECK(last_token == done["token"].get<std::uint64_t>());
    CHECK(last_token == shown["token"].get<std::uint64_t>());
}

TEST_CASE("Server: a redis lease that runs out mid-increment lets a waiter in, and with "
          "--fencing the late write is refused with 409 and both tokens",
          "[server][redis][fence]")
{
    const LateWrite w = late_write(true);
    REQUIRE(w.late.status == 409);
    const auto late = w.late.json();
    CHECK(late["written"] == false);
    CHECK(late["highest_token"] == w.taker.json()["token"]);
    CHECK(late["token"].get<std::uint64_t>() < late["highest_token"].get<std::uint64_t>());
}

TEST_CASE("Server: without --fencing a redis holder's late write lands, and only its unlock "
          "tells (503, written)",
          "[server][redis][fence]")
{
    const LateWrite w = late_write(false);
    CHECK(w.late.status == 503);
    CHECK(w.late.json()["written"] == true);
    CHECK(w.lost_lock_records == 1); // traced as a late write, for /analysis and the dashboard
}
