// Step mode end to end, on the real binary: the class steps real workers through their critical
// sections. -w 3 with one thread each: a parked request holds its worker, so A and B land on two
// different workers and the third answers GET /step and the steps.

#include <catch2/catch.hpp>

#include <signal.h>

#include <future>

#include "harness/http_client.h"
#include "harness/server_process.h"
#include "harness/step_replay.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

json step_view(const ServerProcess& server) { return get_parked_json(server, "/step"); }

std::uint64_t counter(const ServerProcess& server)
{
    return get_parked_json(server, "/counter/k")["value"].get<std::uint64_t>();
}

std::future<HttpResponse> start_increment(const ServerProcess& server,
                                          const std::string& query = "")
{
    const Endpoint to = server.endpoint();
    return std::async(std::launch::async, [to, query] {
        return http_request(to, "POST", "/counter/k/increment" + query, 60s);
    });
}

// The request named `name` in GET /step once `ready` holds for it; fails the test after 10 s.
json wait_request(const ServerProcess& server, const std::string& name,
                  const std::function<bool(const json&)>& ready)
{
    json found;
    const bool seen = wait_until([&] {
        const json view = step_view(server);
        for (const auto& r : view["requests"])
            if (r["name"] == name && ready(r)) {
                found = r;
                return true;
            }
        return false;
    });
    INFO(step_view(server).dump());
    REQUIRE(seen);
    return found;
}

json wait_parked_at(const ServerProcess& server, const std::string& name, int point)
{
    return wait_request(server, name, [point](const json& r) {
        return r["state"] == "parked" && r["point_index"] == point;
    });
}

HttpResponse step(const ServerProcess& server, const json& request)
{
    return server.control("/control/step?request=" +
                          std::to_string(request["id"].get<std::uint64_t>()));
}

// Steps `request` until it is parked at `point` (0..4) or, with point 5, has finished.
void step_to(const ServerProcess& server, const std::string& name, int point)
{
    for (;;) {
        const json r =
            wait_request(server, name, [](const json& r) { return r["state"] != "running"; });
        if (r["point_index"].get<int>() >= point) return;
        const auto answer = step(server, r);
        INFO(answer.body);
        REQUIRE(answer.status == 200);
        if (answer.json()["state"] == "finished") return;
    }
}

void turn_on(const ServerProcess& server)
{
    REQUIRE(server.control("/control/step?key=k&on=1").status == 200);
}

// A parked at "asked for the lock", then B, each on its own worker.
std::pair<std::future<HttpResponse>, std::future<HttpResponse>>
park_two(const ServerProcess& server)
{
    auto a = start_increment(server);
    const json ra = wait_parked_at(server, "A", 0);
    auto b = start_increment(server);
    const json rb = wait_parked_at(server, "B", 0);
    REQUIRE(ra["pid"] != rb["pid"]);
    return {std::move(a), std::move(b)};
}

} // namespace

TEST_CASE("Step: in thread mode, A read, B read, A write, B write loses one of two updates",
          "[server][step]")
{
    ServerProcess server({"-w", "3", "--lock-mode", "thread"}, 3);
    turn_on(server);
    auto [a, b] = park_two(server);
    step_to(server, "A", 2);
    step_to(server, "B", 2);
    CHECK(step_view(server)["keys"][0]["holders"].size() == 2); // both inside at once
    step_to(server, "A", 3);
    step_to(server, "B", 3);
    step_to(server, "A", 5);
    step_to(server, "B", 5);
    REQUIRE(a.get().status == 200);
    REQUIRE(b.get().status == 200);
    CHECK(counter(server) == 1);
    CHECK(step_view(server)["keys"][0]["schedule"] ==
          "A:lock A:read B:lock B:read A:write B:write A:unlock A:done B:unlock B:done");
}

TEST_CASE("Step: in mutex mode with preload, B waits at the lock until A unlocks", "[server][step]")
{
    ServerProcess server({"-w", "3", "--lock-mode", "mutex", "--preload"}, 3);
    turn_on(server);
    auto [a, b] = park_two(server);
    step_to(server, "A", 2);
    const json ra = wait_parked_at(server, "A", 2);
    REQUIRE(step(server, wait_parked_at(server, "B", 0)).status == 200);
    const json waiting = wait_request(
        server, "B", [](const json& r) { return r["state"] == "waiting for the lock"; });
    CHECK(waiting["waiting_for_pid"] == ra["pid"]);
    const auto refused = step(server, waiting);
    CHECK(refused.status == 409);
    CHECK(refused.json()["error"].get<std::string>().find("cannot be stepped past the lock") !=
          std::string::npos);
    step_to(server, "A", 4); // unlocked: B takes the lock
    wait_parked_at(server, "B", 1);
    step_to(server, "A", 5);
    step_to(server, "B", 5);
    REQUIRE(a.get().status == 200);
    REQUIRE(b.get().status == 200);
    CHECK(counter(server) == 2);
}

TEST_CASE("Step: a parked increment nobody steps gives up with a 503 and writes nothing",
          "[server][step]")
{
    ServerProcess server({"-w", "2", "--lock-mode", "mutex", "--preload"}, 2);
    turn_on(server);
    auto a = start_increment(server, "?step_timeout_ms=300");
    const auto answer = a.get();
    CHECK(answer.status == 503);
    CHECK(answer.json()["error"].get<std::string>().find("gave up at 'asked for the lock'") !=
          std::string::npos);
    CHECK(answer.json()["written"] == false);
    CHECK(step_view(server)["requests"].empty());
    CHECK(counter(server) == 0);
}

TEST_CASE("Step: turning step mode off releases every gate", "[server][step]")
{
    ServerProcess server({"-w", "3", "--lock-mode", "mutex", "--preload"}, 3);
    turn_on(server);
    auto [a, b] = park_two(server);
    step_to(server, "A", 2);
    REQUIRE(server.control("/control/step?key=k&on=0").status == 200);
    REQUIRE(a.get().status == 200);
    REQUIRE(b.get().status == 200);
    CHECK(counter(server) == 2);
    CHECK(step_view(server)["keys"].empty());
}

TEST_CASE("Step: a worker killed while parked holding the lock frees its gate and its lock",
          "[server][step]")
{
    ServerProcess server({"-w", "2", "--lock-mode", "mutex", "--preload"}, 2);
    turn_on(server);
    auto a = start_increment(server);
    wait_parked_at(server, "A", 0);
    step_to(server, "A", 1);
    const json ra = wait_parked_at(server, "A", 1);
    REQUIRE(::kill(ra["pid"].get<pid_t>(), SIGKILL) == 0);
    CHECK(a.get().status == 0); // no answer: its worker died
    REQUIRE(wait_until([&] { return step_view(server)["requests"].empty(); }));
    REQUIRE(server.control("/control/step?key=k&on=0").status == 200);
    REQUIRE(server.wait_for_log("Freed 1 step gate(s) of dead worker"));
    const auto next =
        http_request(server.endpoint(), "POST", "/counter/k/increment?timeout_ms=5000");
    CHECK(next.status == 200);
}

TEST_CASE("Step: bad input gets a JSON 400, and a step needs the token", "[server][step]")
{
    ServerProcess server({"-w", "1"}, 1);
    const auto bad = [&](const std::string& target) {
        const auto r = server.control(target);
        INFO(target << " -> " << r.body);
        CHECK(r.status == 400);
        CHECK(r.json().contains("error"));
    };
    bad("/control/step?key=k&request=1"); // k is not in step mode
    bad("/control/step?request=999");
    bad("/control/step?request=abc");
    bad("/control/step?key=k&on=2");
    bad("/control/step?key=..&on=1");
    bad("/control/step");
    bad("/control/step?key=k&on=0");
    const auto anonymous = http_request(server.endpoint(), "POST", "/control/step?key=k&on=1");
    CHECK(anonymous.status == 403);
    CHECK(step_view(server)["keys"].empty());
}

TEST_CASE("Step: one schedule replayed 10 times gives the same outcome 10 times", "[server][step]")
{
    ServerProcess server({"-w", "3", "--lock-mode", "thread"}, 3);
    for (int run = 0; run < 10; ++run) {
        const auto r = replay_schedule(server, "k", "A:read B:read A:write B:write");
        INFO("run " << run << ": " << r.schedule);
        CHECK(r.final_value == 1);
        CHECK(r.statuses == std::vector<int>{200, 200});
        CHECK(r.blocked.empty());
        CHECK(r.schedule == "A:lock A:read B:lock B:read A:write B:write A:unlock A:done "
                            "B:unlock B:done");
    }
}

TEST_CASE("Step: replayed in mutex mode with preload, the schedule says which step waited",
          "[server][step]")
{
    ServerProcess server({"-w", "3", "--lock-mode", "mutex", "--preload"}, 3);
    const auto r = replay_schedule(server, "k", "A:read B:read A:write B:write");
    CHECK(r.final_value == 2);
    CHECK(r.statuses == std::vector<int>{200, 200});
    REQUIRE(r.blocked.size() == 2);
    CHECK(r.blocked[0].starts_with("B:read could not run: B waits for the lock held by pid"));
}
