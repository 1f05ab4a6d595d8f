// Bursts and floods on the real binary: a burst of connections is accepted fast, a worker stops
// accepting at --worker-connections, and a worker out of descriptors backs off instead of
// spinning, then serves again. The timings asserted are loose on purpose (ten times what the
// fixed code needs, a fraction of what the old one took); the figures are in bench_floods.

#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness/http_client.h"
#include "harness/raw_exchange.h"
#include "harness/server_process.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kProbe = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

bool answered(const Endpoint& to, std::chrono::milliseconds timeout)
{
    return raw_exchange(to, kProbe, timeout).rfind("HTTP/1.1 200", 0) == 0;
}

std::vector<forklock::UniqueFd> open_idle(const Endpoint& to, int count)
{
    std::vector<forklock::UniqueFd> fds;
    for (int i = 0; i < count; ++i) fds.push_back(connect_raw(to));
    return fds;
}

// The client needs more descriptors than the usual soft limit of 1,024.
void raise_own_descriptor_limit()
{
    rlimit limit{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
    limit.rlim_cur = limit.rlim_max;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
}

// A server started with RLIMIT_NOFILE `soft` (exec keeps it): ours is lowered around the start.
std::unique_ptr<ServerProcess> start_with_descriptor_limit(rlim_t soft,
                                                           std::vector<std::string> args)
{
    rlimit mine{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &mine) == 0);
    rlimit low = mine;
    low.rlim_cur = soft;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    std::unique_ptr<ServerProcess> server;
    try {
        server = std::make_unique<ServerProcess>(std::move(args), 1);
    } catch (...) {
        ::setrlimit(RLIMIT_NOFILE, &mine);
        throw;
    }
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &mine) == 0);
    return server;
}

// utime + stime of `pid`, in seconds.
double cpu_seconds(pid_t pid)
{
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 13; ++i) rest >> field;
    unsigned long long utime = 0, stime = 0;
    rest >> utime >> stime;
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::size_t open_descriptors(pid_t pid)
{
    const auto dir = std::filesystem::path("/proc") / std::to_string(pid) / "fd";
    std::error_code error;
    auto entries = std::filesystem::directory_iterator(dir, error);
    return error ? 0 : static_cast<std::size_t>(std::distance(entries, {}));
}

// A metric of the one worker, from /metrics: -1 when it is not there.
long worker_metric(const ServerProcess& server, const std::string& name)
{
    const auto body = http_request(server.endpoint(), "GET", "/metrics", 5s).body;
    std::smatch m;
    if (!std::regex_search(body, m, std::regex("\n" + name + "\\{pid=\"\\d+\"\\} (\\d+)")))
        return -1;
    return std::stol(m[1]);
}

} // namespace

TEST_CASE("Server floods: a new client is answered within 1 s of a 2,000-connection burst",
          "[server_floods]")
{
    raise_own_descriptor_limit();
    ServerProcess server({"-w", "2", "--preload"}, 2);
    auto burst = open_idle(server.endpoint(), 2000); // the old accept turns took 3.9 s for these
    const auto start = Clock::now();
    const bool ok = answered(server.endpoint(), 5s);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    INFO("/healthz after the burst took " << took.count() << " ms");
    CHECK(ok);
    CHECK(took < 1s);
}

TEST_CASE("Server floods: a worker at --worker-connections stops accepting until one closes",
          "[server_floods]")
{
    ServerProcess server({"-w", "1", "--worker-connections", "8"}, 1);
    auto idle = open_idle(server.endpoint(), 7);
    // /metrics counts its own connection: seven idle ones and itself make eight.
    REQUIRE(wait_until([&] { return worker_metric(server, "forklock_http_connections") == 8; }, 5s,
                       20ms));
    idle.push_back(connect_raw(server.endpoint()));  // the eighth: the worker is at its cap
    CHECK_FALSE(answered(server.endpoint(), 500ms)); // waits in the backlog, not refused
    idle.clear();
    CHECK(answered(server.endpoint(), 5s));
    CHECK(worker_metric(server, "forklock_http_connection_cap_reached_total") >= 1);
}

TEST_CASE("Server floods: out of descriptors, a worker backs off instead of spinning, then serves",
          "[server_floods]")
{
    raise_own_descriptor_limit();
    auto server = start_with_descriptor_limit(256, {"-w", "1"});
    const pid_t worker = *server->worker_pids().begin();
    auto flood = open_idle(server->endpoint(), 600); // the backlog keeps what the worker can't
    REQUIRE(wait_until([&] { return open_descriptors(worker) >= 250; }, 60s, 10ms));
    const double before = cpu_seconds(worker);
    const auto window_start = Clock::now();
    std::this_thread::sleep_for(2s); // a window to measure CPU over, not a wait for a state
    const double used = cpu_seconds(worker) - before;
    const double window = std::chrono::duration<double>(Clock::now() - window_start).count();
    INFO("the worker used " << used << " s of CPU in " << window
                            << " s (the old listener, spinning on EMFILE: 0.3 to 1 s/s)");
    CHECK(used < 0.1 * window);
    CHECK(server->count_in_log("accept() failed: Too many open files") == 1); // once per episode
    flood.clear();
    CHECK(wait_until([&] { return answered(server->endpoint(), 1s); }, 10s, 50ms));
}
