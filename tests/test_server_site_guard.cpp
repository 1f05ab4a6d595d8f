// The site checks on a real server, with raw requests (site_guard.h, api_control.h): what a page
// of another site, a DNS-rebinding page or a client without the token can no longer do, and that
// the owner with the token still can. Each refusal is a JSON 403, and the state is unchanged.

#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/raw_exchange.h"
#include "harness/server_process.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char* kToken = "t0k3n-0123456789";

// A request as a browser's simple request would send it (text/plain, an empty body), with
// `fields` on top. `close`: "Connection: close", through evhttp; else the simple-request path.
std::string request(const std::string& method, const std::string& target, const std::string& host,
                    const std::string& fields, bool close = true)
{
    return fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\n{}{}\r\n", method, target, host, fields,
                       close ? "Content-Type: text/plain\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n"
                             : "");
}

struct Answer {
    int status = 0;
    json body;
};

Answer send(const ServerProcess& server, const std::string& bytes)
{
    const std::string reply = raw_response(server.endpoint(), bytes);
    Answer a;
    if (reply.size() > 12) a.status = std::stoi(reply.substr(9, 3));
    const std::size_t head = reply.find("\r\n\r\n");
    if (head != std::string::npos) a.body = json::parse(reply.substr(head + 4), nullptr, false);
    return a;
}

std::string here(const ServerProcess& server) { return fmt::format("127.0.0.1:{}", server.port()); }

std::string error_of(const Answer& a)
{
    return a.body.is_object() ? a.body.value("error", std::string()) : std::string();
}

json workers(const ServerProcess& server)
{
    return http_request(server.endpoint(), "GET", "/workers").json();
}

// Worker `pid` is still running and no worker died: what a refused kill must leave.
void check_alive(const ServerProcess& server, pid_t pid)
{
    CHECK(::kill(pid, 0) == 0);
    CHECK(server.worker_pids().count(pid) == 1);
    CHECK(workers(server)["deaths"].empty());
}

} // namespace

TEST_CASE("Server: a cross-site kill from loopback is refused with 403, the worker lives",
          "[server][site_guard]")
{
    ServerProcess server({"-w", "2", "--preload", "--dashboard-token", kToken}, 2);
    const pid_t victim = *server.worker_pids().begin();
    const std::string kill = fmt::format("/control/kill?pid={}", victim);
    for (const bool close : {true, false}) {
        INFO((close ? "through evhttp" : "as a simple request"));
        // A foreign Origin, the page's simple request: refused whatever else it carries.
        for (const std::string& origin :
             {std::string("http://evil.example"), std::string("null"),
              fmt::format("http://127.0.0.1:{}", server.port() + 1)}) {
            INFO(origin);
            const Answer a = send(server, request("POST", kill, here(server),
                                                  "Origin: " + origin + "\r\n", close));
            CHECK(a.status == 403);
            CHECK(error_of(a).find("Origin") != std::string::npos);
        }
        // The browser's own word: Sec-Fetch-Site, even with the token.
        for (const std::string site : {"cross-site", "same-site"}) {
            const Answer a = send(server, request("POST", kill, here(server),
                                                  "Sec-Fetch-Site: " + site + "\r\n", close));
            CHECK(a.status == 403);
            CHECK(error_of(a).find("Sec-Fetch-Site: " + site) != std::string::npos);
        }
        // No Origin, no token (an old browser, or any local program): the token is missing.
        const Answer bare = send(server, request("POST", kill, here(server), "", close));
        CHECK(bare.status == 403);
        CHECK(error_of(bare).find("no token was given") != std::string::npos);
    }
    check_alive(server, victim);
}

TEST_CASE("Server: a control without the right token in its header changes nothing",
          "[server][site_guard]")
{
    ServerProcess server({"-w", "2", "--preload", "--dashboard-token", kToken}, 2);
    const pid_t victim = *server.worker_pids().begin();
    const std::string config = "/control/config?mode=none";
    for (const std::string& fields :
         {std::string(), std::string("X-Forklock-Token: wrong\r\n"),
          fmt::format("X-Forklock-Token: {}x\r\n", kToken)}) {
        INFO(fields);
        CHECK(send(server, request("POST", config, here(server), fields)).status == 403);
        CHECK(send(server, request("POST", fmt::format("/control/kill?pid={}", victim),
                                   here(server), fields))
                  .status == 403);
    }
    const Answer in_url = send(server, request("POST", config + "&token=" + kToken, here(server), ""));
    CHECK(in_url.status == 403);
    CHECK(error_of(in_url).find("X-Forklock-Token header") != std::string::npos);
    const json w = workers(server);
    CHECK(w["generation"] == 0);
    CHECK(w["mode"] == "mutex");
    check_alive(server, victim);

    // The owner's request: the header, from a page of this server or from curl.
    const Answer owner = send(
        server, request("POST", fmt::format("/control/kill?pid={}", victim), here(server),
                        fmt::format("X-Forklock-Token: {}\r\nOrigin: http://{}\r\n", kToken,
                                    here(server))));
    if (owner.status == 409) { // it reached the victim itself, which will not kill itself:
        // ask again until another worker answers (each request may land on either worker)
        CHECK(wait_until([&] {
            return server.control(fmt::format("/control/kill?pid={}", victim)).status == 200;
        }));
    } else {
        CHECK(owner.status == 200);
    }
    CHECK(wait_until([&] { return !workers(server)["deaths"].empty(); }));
}

TEST_CASE("Server: a rebinding Host is refused on every route, reads included",
          "[server][site_guard]")
{
    ServerProcess server({"-w", "1", "--dashboard-token", kToken}, 1);
    const std::string rebound = fmt::format("attacker.example:{}", server.port());
    for (const std::string target : {"/locks", "/trace", "/workers", "/metrics", "/healthz",
                                     "/dashboard", "/counter/a"}) {
        for (const bool close : {true, false}) {
            INFO(target << (close ? " through evhttp" : " as a simple request"));
            const Answer a = send(server, request("GET", target, rebound, "", close));
            CHECK(a.status == 403);
            CHECK(error_of(a).find("'attacker.example'") != std::string::npos);
        }
    }
    // Even with the token, and not a byte of the page (which would hold it) goes out.
    const std::string page = raw_response(
        server.endpoint(), request("GET", "/dashboard", rebound,
                                   fmt::format("X-Forklock-Token: {}\r\n", kToken)));
    CHECK(page.starts_with("HTTP/1.1 403 "));
    CHECK(page.find(kToken) == std::string::npos);
    for (const std::string& host : {std::string("localhost"), fmt::format("[::1]:{}", server.port()),
                                   here(server)})
        CHECK(send(server, request("GET", "/healthz", host, "")).status == 200);
    CHECK(server.count_in_log("Hosts: answers only Host localhost, 127.x.y.z, [::1]") == 1);
}

TEST_CASE("Server: --allowed-hosts answers a listed name, and * answers any",
          "[server][site_guard]")
{
    const auto allowed = GENERATE(std::string("class.example,lab.example"), std::string("*"));
    INFO(allowed);
    ServerProcess server({"-w", "1", "--allowed-hosts", allowed}, 1);
    CHECK(send(server, request("GET", "/locks", "lab.example:80", "")).status == 200);
    CHECK(send(server, request("GET", "/locks", "localhost", "")).status == 200);
    CHECK(send(server, request("GET", "/locks", "attacker.example", "")).status ==
          (allowed == "*" ? 200 : 403));
}

TEST_CASE("Server: the dashboard carries the token only to a loopback browser in loopback mode",
          "[server][site_guard]")
{
    const auto mode = GENERATE(std::string("loopback"), std::string("token"), std::string("off"));
    INFO(mode);
    ServerProcess server({"-w", "1", "--dashboard-controls", mode, "--dashboard-token", kToken}, 1);
    const std::string page = raw_response(server.endpoint(),
                                          request("GET", "/dashboard", here(server), ""));
    REQUIRE(page.starts_with("HTTP/1.1 200 "));
    const std::string meta = fmt::format(R"(<meta name="forklock-token" content="{}">)", kToken);
    CHECK((page.find(meta) != std::string::npos) == (mode == "loopback"));
    CHECK(page.find("X-Frame-Options: DENY") != std::string::npos);
    CHECK(page.find("Referrer-Policy: no-referrer") != std::string::npos);
}

TEST_CASE("Server: the access log masks the token of the dashboard's URL and of its Referer",
          "[server][site_guard]")
{
    const TempDir dir("site-guard-access");
    const auto path = dir.path() / "access.log";
    ServerProcess server(
        {"-w", "1", "--dashboard-token", kToken, "--access-logfile", path.string()}, 1);
    const std::string url = fmt::format("/dashboard?token={}", kToken);
    CHECK(send(server, request("GET", url, here(server), "")).status == 200);
    CHECK(send(server, request("GET", "/workers", here(server),
                               fmt::format("Referer: http://{}{}\r\n", here(server), url)))
              .status == 200);
    std::string log;
    CHECK(wait_until([&] {
        std::ifstream in(path);
        std::stringstream all;
        all << in.rdbuf();
        log = all.str();
        return log.find("GET /workers") != std::string::npos;
    }));
    INFO(log);
    CHECK(log.find("GET /dashboard?token=*** HTTP/1.1") != std::string::npos);
    CHECK(log.find(fmt::format("\"http://{}/dashboard?token=***\"", here(server))) !=
          std::string::npos);
    CHECK(log.find(kToken) == std::string::npos);
    CHECK(server.count_in_log(url) == 1); // the start-up line, the owner's way to get it
}
