// Leases and fencing on the real binary: a holder whose lease runs out while its write is on the
// way has that write refused with 409 and both tokens under --fencing (nothing acknowledged is
// lost), goes through without it (only its unlock notices), and the flags refuse bad values.

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "harness/http_client.h"
#include "harness/server_process.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

// One worker of two threads (the holder and the taker share a pid: the lease still tells them
// apart), semaphore mode, a 100 ms lease.
std::vector<std::string> leased(bool fencing)
{
    std::vector<std::string> args{"--lock-mode", "semaphore", "--preload",   "--threads",
                                  "2",           "--lock-lease-ms", "100"};
    if (fencing) args.emplace_back("--fencing");
    return args;
}

// The key's last fencing token as /locks shows it, 0 while it has none.
std::uint64_t last_token(const ServerProcess& server, const std::string& key)
{
    const auto body = http_request(server.endpoint(), "GET", "/locks").json();
    if (body.is_discarded()) return 0;
    for (const auto& k : body["keys"])
        if (k["key"] == key) return k["last_token"].get<std::uint64_t>();
    return 0;
}

struct LateWrite {
    HttpResponse late;  // the holder whose write waits 3 s after its last check
    HttpResponse taker; // the increment that takes the key after the lease
};

// The late holder takes "k" and waits 3 s before its write; once it holds the key, another
// increment takes the key after the 100 ms lease and writes first.
LateWrite late_write(const ServerProcess& server)
{
    LateWrite out;
    std::thread holder([&] {
        out.late = http_request(server.endpoint(), "POST",
                                "/counter/k/increment?write_delay_ms=3000", 20s);
    });
    REQUIRE(wait_until([&] { return last_token(server, "k") != 0; }, 10s));
    out.taker = http_request(server.endpoint(), "POST", "/counter/k/increment", 20s);
    holder.join();
    return out;
}

} // namespace

TEST_CASE("Server: with --fencing a holder whose lease ran out before its write gets 409 with "
          "both tokens, and nothing acknowledged is lost",
          "[server][fence]")
{
    ServerProcess server(leased(true), 1);
    const LateWrite w = late_write(server);
    REQUIRE(w.taker.status == 200);
    const auto taker = w.taker.json();
    CHECK(taker["value"] == 1);
    const std::uint64_t newer = taker["token"].get<std::uint64_t>();
    REQUIRE(w.late.status == 409);
    const auto late = w.late.json();
    CHECK(late["written"] == false);
    CHECK(late["highest_token"] == newer);
    CHECK(late["token"].get<std::uint64_t>() < newer);
    CHECK(late["error"].get<std::string>().find("refused") != std::string::npos);
    CHECK(http_request(server.endpoint(), "GET", "/counter/k").json()["value"] == 1);
    // The trace keeps both: the refused write with its token, the taker's with its own.
    const auto trace = http_request(server.endpoint(), "GET", "/trace?key=k").json();
    int refused = 0;
    for (const auto& r : trace["records"])
        if (r["outcome"] == "refused") {
            ++refused;
            CHECK(r["token"] == late["token"]);
        }
    CHECK(refused == 1);
    // A reset is fenced too: it writes 0 under the current holder's token, and the refused
    // holder's token stays refused after it.
    CHECK(http_request(server.endpoint(), "DELETE", "/counter/k").status == 200);
    CHECK(http_request(server.endpoint(), "GET", "/counter/k").json()["value"] == 0);
    const auto next = http_request(server.endpoint(), "POST", "/counter/k/increment");
    REQUIRE(next.status == 200);
    CHECK(next.json()["value"] == 1);
    CHECK(next.json()["token"].get<std::uint64_t>() > newer);
}

TEST_CASE("Server: without --fencing the late write goes through, and only its unlock tells",
          "[server][fence]")
{
    ServerProcess server(leased(false), 1);
    const LateWrite w = late_write(server);
    CHECK(w.taker.status == 200);
    CHECK(w.late.status == 503);
    CHECK(w.late.json()["written"] == true);
    CHECK(server.wait_for_log("its lease ran out and the key was taken over"));
}

TEST_CASE("Server: a lease of 0 or less, a lease in a mode that cannot take a key over, and "
          "--fencing without tokens exit 2 with the reason",
          "[server][fence]")
{
    struct Case {
        std::vector<std::string> args;
        std::string says;
    };
    const std::vector<Case> cases{
        {{"--lock-mode", "semaphore", "--lock-lease-ms", "0"}, "a lease is 1..86400000 ms, not '0'"},
        {{"--lock-mode", "semaphore", "--lock-lease-ms", "-5"}, "not '-5'"},
        {{"--lock-mode", "semaphore", "--lock-lease-ms", "soon"}, "not 'soon'"},
        {{"--lock-mode", "mutex", "--lock-lease-ms", "100"},
         "no lease in mutex mode: mutex: a robust mutex held by a live thread cannot be taken"},
        {{"--lock-mode", "flock", "--lock-lease-ms", "100"}, "no lease in flock mode"},
        {{"--lock-mode", "thread", "--fencing"}, "--fencing: thread mode issues no fencing tokens"},
        {{"--lock-mode", "none", "--fencing"}, "--fencing: none mode issues no fencing tokens"},
    };
    for (const auto& c : cases) {
        INFO(c.says);
        ServerSpec spec;
        spec.args = c.args;
        spec.refused = true;
        ServerProcess server(spec);
        CHECK(server.wait_exit(10s) == 2);
        CHECK(server.log().find(c.says) != std::string::npos);
        CHECK(server.log().find("Listening at") == std::string::npos);
    }
}
