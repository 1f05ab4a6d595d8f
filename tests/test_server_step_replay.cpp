// POST /control/step/replay, a step's at= guard, and the accept rule that puts the exercise's two
// increments on two workers, on the real binary with 2 workers of 2 threads (docs/stepping.md).

#include <catch2/catch.hpp>

#include <future>
#include <set>

#include "app/step_replayer.h"
#include "harness/http_client.h"
#include "harness/server_process.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::vector<std::string> kTwoByTwo = {"-w", "2", "--threads", "2"};

std::vector<std::string> args(const std::vector<std::string>& more)
{
    std::vector<std::string> all = kTwoByTwo;
    all.insert(all.end(), more.begin(), more.end());
    return all;
}

HttpResponse replay(const ServerProcess& server, const std::string& schedule,
                    const std::string& token)
{
    HttpRequest r{"POST", "/control/step/replay?key=k", {{"X-Forklock-Token", token}}, schedule};
    return http_request(server.endpoint(), r, 30s);
}

// What must not change from one run to the next: no pids, no ids.
json outcome(const json& answer)
{
    json blocked = json::array();
    for (const auto& b : answer["blocked"]) blocked.push_back(b["step"]);
    json statuses = json::array();
    for (const auto& a : answer["answers"]) statuses.push_back({a["status"], a["value"]});
    return {answer["value"], answer["recorded"], statuses, blocked};
}

// GET /step, or null without an answer in 2 s: a loop that accepted this connection may have
// parked a request of another connection it holds before it read this one (then it answers when
// that request moves on); the callers wait and ask again on a new connection.
json step_view(const ServerProcess& server)
{
    const auto r = http_request(server.endpoint(), "GET", "/step", 2s);
    return r.status == 200 ? r.json() : json();
}

json wait_parked(const ServerProcess& server, const std::string& name, int point)
{
    json found;
    REQUIRE(wait_until([&] {
        const json view = step_view(server);
        if (view.is_null()) return false;
        for (const auto& r : view["requests"])
            if (r["name"] == name && r["state"] == "parked" && r["point_index"] == point) {
                found = r;
                return true;
            }
        return false;
    }));
    return found;
}

std::future<HttpResponse> start_increment(const ServerProcess& server)
{
    const Endpoint to = server.endpoint();
    return std::async(std::launch::async, [to] {
        return http_request(to, "POST", "/counter/k/increment", 60s);
    });
}

} // namespace

TEST_CASE("Step: a schedule parses from spaces, plus signs or %20, and a bad one says why",
          "[step]")
{
    const auto moves = forklock::parse_step_schedule("A:read+B%3Aread%20A:write, B:done");
    REQUIRE(moves.size() == 4);
    CHECK(moves[1].text() == "B:read");
    CHECK(moves[3].text() == "B:done");
    CHECK_THROWS_WITH(forklock::parse_step_schedule(""), Catch::Contains("empty"));
    CHECK_THROWS_WITH(forklock::parse_step_schedule("C:read"), Catch::Contains("A or B"));
    CHECK_THROWS_WITH(forklock::parse_step_schedule("A:jump"), Catch::Contains("not a step"));
    CHECK_THROWS_WITH(forklock::parse_step_schedule("A"), Catch::Contains("NAME:STEP"));
}

TEST_CASE("Step: one schedule replayed 10 times over HTTP on 2 workers gives one outcome",
          "[server][step]")
{
    ServerProcess server(args({"--lock-mode", "thread"}), 2);
    json first;
    for (int run = 0; run < 10; ++run) {
        const auto r = replay(server, "A:read B:read A:write B:write", server.dashboard_token());
        INFO("run " << run << ": " << r.body);
        REQUIRE(r.status == 200);
        const json answer = r.json();
        if (run == 0) first = outcome(answer);
        CHECK(outcome(answer) == first);
        CHECK(answer["value"] == 1);
        CHECK(answer["acknowledged"] == 2);
        CHECK(answer["text"].get<std::string>().ends_with(
            "the file says 1 after 2 acknowledged increments: one update lost"));
    }
    CHECK(first[1] == "A:lock A:read B:lock B:read A:write B:write A:unlock A:done B:unlock "
                      "B:done");
    CHECK(step_view(server)["keys"].empty()); // step mode is off again
}

TEST_CASE("Step: replayed in mutex with preload, the answer says which steps waited for the lock",
          "[server][step]")
{
    ServerProcess server(args({"--lock-mode", "mutex", "--preload"}), 2);
    const auto r = replay(server, "A:read B:read A:write B:write", server.dashboard_token());
    INFO(r.body);
    REQUIRE(r.status == 200);
    const json answer = r.json();
    CHECK(answer["value"] == 2);
    REQUIRE(answer["blocked"].size() == 2);
    CHECK(answer["blocked"][0]["step"] == "B:read");
    CHECK(answer["blocked"][0]["why"].get<std::string>().starts_with(
        "B waits inside lock() for the lock held by A (pid "));
    CHECK(answer["blocked"][1]["step"] == "B:write");
}

TEST_CASE("Step: a malformed schedule gets a JSON 400, and a replay needs the token",
          "[server][step]")
{
    ServerProcess server(args({}), 2);
    for (const std::string bad : {"", "A:read C:read", "A:jump", "A-read"}) {
        const auto r = replay(server, bad, server.dashboard_token());
        INFO("'" << bad << "' -> " << r.body);
        CHECK(r.status == 400);
        CHECK(r.json()["error"].get<std::string>().starts_with("malformed schedule: "));
    }
    CHECK(replay(server, "A:read", "wrong-token").status == 403);
    CHECK(http_request(server.endpoint(), "GET", "/counter/k").json()["value"] == 0);
}

TEST_CASE("Step: a step retried with at= after its request moved on gets 409 and moves nothing",
          "[server][step]")
{
    ServerProcess server(args({"--lock-mode", "thread"}), 2);
    REQUIRE(server.control("/control/step?key=k&on=1").status == 200);
    auto a = start_increment(server);
    const json parked = wait_parked(server, "A", 0);
    const std::string target =
        "/control/step?at=0&request=" + std::to_string(parked["id"].get<std::uint64_t>());
    REQUIRE(server.control(target).status == 200);
    wait_parked(server, "A", 1);
    const auto again = server.control(target);
    INFO(again.body);
    CHECK(again.status == 409);
    CHECK(again.json()["error"].get<std::string>().find("stepped already") != std::string::npos);
    CHECK(wait_parked(server, "A", 1)["point"] == "holds the lock");
    REQUIRE(server.control("/control/step?key=k&on=0").status == 200);
    CHECK(a.get().status == 200);
}

TEST_CASE("Step: with 2 workers of 2 threads, B always parks on another worker than A",
          "[server][step]")
{
    ServerProcess server(args({"--lock-mode", "thread"}), 2);
    for (int run = 0; run < 6; ++run) {
        REQUIRE(server.control("/control/step?key=k&on=1").status == 200);
        auto a = start_increment(server);
        const json ra = wait_parked(server, "A", 0);
        auto b = start_increment(server);
        const json rb = wait_parked(server, "B", 0);
        INFO("run " << run);
        CHECK(ra["pid"] != rb["pid"]);
        REQUIRE(server.control("/control/step?key=k&on=0").status == 200);
        CHECK(a.get().status == 200);
        CHECK(b.get().status == 200);
    }
}
