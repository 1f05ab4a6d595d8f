// The trace end to end, on the real binary: thread mode's race shows in /analysis and /metrics,
// mutex with --preload shows none, the Chrome export has a track per worker, bad input gets 400.

#include <catch2/catch.hpp>

#include <set>

#include "harness/http_client.h"
#include "harness/server_process.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

constexpr int kRequests = 8;

std::uint64_t counter(const ServerProcess& server, const std::string& key)
{
    return http_request(server.endpoint(), "GET", "/counter/" + key)
        .json()["value"]
        .get<std::uint64_t>();
}

// kRequests increments of "k" at once, each holding the lock for hold_ms.
std::vector<HttpResponse> increments(const ServerProcess& server, int hold_ms)
{
    const HttpRequest increment{
        "POST", "/counter/k/increment?hold_ms=" + std::to_string(hold_ms), {}, {}};
    return concurrent_requests(server.endpoint(), increment, kRequests, 30s);
}

std::set<int> answering_pids(const std::vector<HttpResponse>& responses)
{
    std::set<int> pids;
    for (const auto& r : responses)
        if (r.status == 200) pids.insert(r.json()["pid"].get<int>());
    return pids;
}

// The value of an unlabelled metric line "NAME VALUE" in /metrics, or -1.
double metric_value(const ServerProcess& server, const std::string& name)
{
    auto body = http_request(server.endpoint(), "GET", "/metrics").body;
    auto at = body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stod(body.substr(at + name.size() + 2));
}

} // namespace

TEST_CASE("Server trace: thread mode with 4 workers shows overlaps and explains every lost update",
          "[server][trace]")
{
    ServerProcess server({"-w", "4", "--lock-mode", "thread"}, 4);
    auto responses = increments(server, 150);
    REQUIRE(answering_pids(responses).size() >= 2);
    std::uint64_t final_value = counter(server, "k");
    auto a = http_request(server.endpoint(), "GET", "/analysis?key=k");
    REQUIRE(a.status == 200);
    auto body = a.json();
    INFO(a.body);
    CHECK(body["increments"] == kRequests);
    CHECK(body["overlaps"].get<int>() > 0);
    CHECK(body["lost"].get<std::uint64_t>() == kRequests - final_value);
    REQUIRE_FALSE(body["examples"].empty());
    CHECK(body["examples"][0]["text"].get<std::string>().find("update") != std::string::npos);
    CHECK(metric_value(server, "forklock_lock_overlaps_total") > 0);
    CHECK(metric_value(server, "forklock_lock_hold_seconds_count") == kRequests);
}

TEST_CASE("Server trace: mutex with --preload shows no overlap and no lost update",
          "[server][trace]")
{
    ServerProcess server({"-w", "4", "--preload", "--lock-mode", "mutex"}, 4);
    increments(server, 40);
    CHECK(counter(server, "k") == kRequests);
    auto body = http_request(server.endpoint(), "GET", "/analysis?key=k").json();
    CHECK(body["increments"] == kRequests);
    CHECK(body["overlaps"] == 0);
    CHECK(body["lost"] == 0);
    CHECK(body["examples"].empty());
    CHECK(metric_value(server, "forklock_lock_overlaps_total") == 0);
    // A reset is traced as well: the replay starts again from 0 and still finds nothing lost.
    REQUIRE(http_request(server.endpoint(), "DELETE", "/counter/k").status == 200);
    for (int i = 0; i < 3; ++i)
        REQUIRE(http_request(server.endpoint(), "POST", "/counter/k/increment").status == 200);
    auto after = http_request(server.endpoint(), "GET", "/analysis?key=k").json();
    CHECK(after["increments"] == kRequests + 3);
    CHECK(after["lost"] == 0);
    auto last =
        http_request(server.endpoint(), "GET", "/trace?key=k&since=" + std::to_string(kRequests))
            .json();
    REQUIRE(last["records"].size() == 4);
    CHECK(last["records"][0]["outcome"] == "reset");
}

TEST_CASE("Server trace: the Chrome export parses and has one track per worker that answered",
          "[server][trace]")
{
    ServerProcess server({"-w", "4", "--lock-mode", "thread"}, 4);
    auto pids = answering_pids(increments(server, 100));
    auto r = http_request(server.endpoint(), "GET", "/trace?format=chrome");
    REQUIRE(r.status == 200);
    auto trace = nlohmann::json::parse(r.body);
    std::set<int> hold_pids, named_pids;
    int holds = 0;
    for (const auto& e : trace["traceEvents"]) {
        if (e["ph"] == "M" && e["name"] == "process_name") named_pids.insert(e["pid"].get<int>());
        if (e["ph"] == "X" && e["name"] == "hold k") {
            ++holds;
            hold_pids.insert(e["pid"].get<int>());
            CHECK(e["dur"].get<double>() >= 100'000 * 0.9); // hold_ms=100, in us
        }
    }
    CHECK(holds == kRequests);
    CHECK(hold_pids == pids);
    CHECK(named_pids == pids);
}

TEST_CASE("Server trace: /trace pages with since and next, and counts what the ring dropped",
          "[server][trace]")
{
    ServerProcess server({"--trace-size", "16"}, 1);
    for (int i = 0; i < 20; ++i)
        REQUIRE(http_request(server.endpoint(), "POST", "/counter/p/increment").status == 200);
    auto all = http_request(server.endpoint(), "GET", "/trace?key=p").json();
    CHECK(all["dropped"] == 4);
    CHECK(all["records"].size() == 16);
    CHECK(all["next"] == 20);
    CHECK(all["records"][0]["seq"] == 4);
    CHECK(all["records"][15]["wrote"] == 20);
    CHECK(all["records"][15]["outcome"] == "written");
    auto page = http_request(server.endpoint(), "GET", "/trace?since=10&limit=3").json();
    CHECK(page["records"].size() == 3);
    CHECK(page["next"] == 13);
    CHECK(page["dropped"] == 0);
    auto none = http_request(server.endpoint(), "GET", "/trace?key=never-traced");
    CHECK(none.status == 200);
    CHECK(none.json()["records"].empty());
    CHECK(
        http_request(server.endpoint(), "GET", "/analysis?key=never-traced").json()["increments"] ==
        0);
}

TEST_CASE("Server trace: bad parameters get a JSON 400", "[server][trace]")
{
    ServerProcess server({"--trace-size", "1024"}, 1);
    for (const char* target :
         {"/trace?limit=0", "/trace?limit=1025", "/trace?since=-1", "/trace?since=abc",
          "/trace?bogus=1", "/trace?key=.hidden", "/trace?format=xml", "/trace?limit=1&limit=2",
          "/analysis", "/analysis?key=", "/analysis?key=k&since=0"}) {
        auto r = http_request(server.endpoint(), "GET", target);
        INFO(target << " -> " << r.body);
        CHECK(r.status == 400);
        CHECK(r.json().contains("error"));
    }
    CHECK(http_request(server.endpoint(), "GET", "/trace?limit=1024").status == 200);
    CHECK(http_request(server.endpoint(), "POST", "/trace").status == 405);
}

TEST_CASE("Server trace: with --no-trace the endpoints say so, the histograms stay",
          "[server][trace]")
{
    ServerProcess server({"--no-trace"}, 1);
    REQUIRE(http_request(server.endpoint(), "POST", "/counter/k/increment").status == 200);
    for (const char* target : {"/trace", "/analysis?key=k"}) {
        auto r = http_request(server.endpoint(), "GET", target);
        CHECK(r.status == 404);
        CHECK(r.json()["error"] == "tracing is off (--no-trace)");
    }
    CHECK(metric_value(server, "forklock_lock_wait_seconds_count") == 1);
}
