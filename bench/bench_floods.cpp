// bench_floods: how fast a new client's GET /healthz is answered while other clients misbehave,
// forklock -w 2 beside nginx with 2 workers, in one run, on loopback:
//   burst      a client has just opened 2,000 connections (the time of one probe, 3 rounds)
//   idle       2,000 connections open, saying nothing
//   slowloris  500 connections sending one header byte a second
//   half-sent  500 requests whose headers promise a body that never comes
//   emfile     RLIMIT_NOFILE 256 and 600 connections: CPU the server burns over 5 s while it
//              cannot accept, then the time until it answers once they close
// Probes are sequential, each on a fresh connection (Connection: close), p50/p99/max in ms.
//
//   build/bench/bench_floods [--forklock PATH] [--no-nginx] [--probes N]
// (PATH defaults to $FORKLOCK_BIN, then build/server/forklock; nginx must be on PATH.)

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "harness/child.h"
#include "harness/raw_exchange.h"
#include "harness/server_process.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"

using namespace forklock;
using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kProbe = "GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";

// One probe: ms until the whole answer came, or nullopt if it was not a 200.
std::optional<double> probe(const Endpoint& to, std::chrono::milliseconds timeout = 5s)
{
    const auto start = Clock::now();
    std::string reply;
    try {
        reply = raw_exchange(to, kProbe, timeout);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (reply.rfind("HTTP/1.1 200", 0) != 0) return std::nullopt;
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string summary(std::vector<double> ms, int failed)
{
    if (ms.empty()) return fmt::format("no answer ({} failed)", failed);
    std::sort(ms.begin(), ms.end());
    auto at = [&](double q) { return ms[std::min(ms.size() - 1, std::size_t(q * ms.size()))]; };
    return fmt::format("p50 {:7.2f}  p99 {:7.2f}  max {:7.2f} ms{}", at(0.5), at(0.99), ms.back(),
                       failed ? fmt::format("  ({} failed)", failed) : "");
}

std::string probes(const Endpoint& to, int count)
{
    std::vector<double> ms;
    int failed = 0;
    for (int i = 0; i < count; ++i) {
        if (auto t = probe(to))
            ms.push_back(*t);
        else
            ++failed;
    }
    return summary(std::move(ms), failed);
}

std::vector<UniqueFd> open_connections(const Endpoint& to, int count, std::string_view first = {})
{
    std::vector<UniqueFd> fds;
    for (int i = 0; i < count; ++i) {
        try {
            fds.push_back(connect_raw(to));
        } catch (const std::exception&) {
            break;
        }
        if (!first.empty())
            (void)!::send(fds.back().get(), first.data(), first.size(), MSG_NOSIGNAL);
    }
    return fds;
}

// A server under test: where it listens and which processes are its own.
struct Target {
    std::string name;
    Endpoint endpoint;
    pid_t master = 0;
};

std::vector<pid_t> process_tree(pid_t master)
{
    std::vector<pid_t> pids{master};
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        std::ifstream stat(entry.path() / "stat");
        std::string line;
        if (!std::getline(stat, line)) continue;
        std::istringstream rest(line.substr(line.rfind(')') + 2));
        std::string state;
        pid_t ppid = 0;
        rest >> state >> ppid;
        if (ppid == master) pids.push_back(std::stoi(entry.path().filename()));
    }
    return pids;
}

double cpu_seconds(const std::vector<pid_t>& pids)
{
    double total = 0;
    for (pid_t pid : pids) {
        std::ifstream stat(fmt::format("/proc/{}/stat", pid));
        std::string line;
        if (!std::getline(stat, line)) continue;
        std::istringstream rest(line.substr(line.rfind(')') + 2));
        std::string field;
        for (int i = 3; i <= 13; ++i) rest >> field; // state .. cmajflt
        unsigned long long utime = 0, stime = 0;
        rest >> utime >> stime;
        total += static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
    return total;
}

// The scenarios that need only a running server.
void floods(const Target& t, int count)
{
    fmt::print("{}\n", t.name);
    fmt::print("  {:<10} {}\n", "quiet", probes(t.endpoint, count));
    for (int round = 0; round < 3; ++round) {
        const auto start = Clock::now();
        auto burst = open_connections(t.endpoint, 2000);
        const double open_ms =
            std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        auto first = probe(t.endpoint);
        fmt::print("  {:<10} {} connections opened in {:.0f} ms, then /healthz in {}\n", "burst",
                   burst.size(), open_ms, first ? fmt::format("{:.2f} ms", *first) : "(failed)");
        burst.clear();
        std::this_thread::sleep_for(300ms); // let the server see the closes
    }
    {
        auto idle = open_connections(t.endpoint, 2000);
        std::this_thread::sleep_for(500ms);
        fmt::print("  {:<10} {}\n", "idle 2000", probes(t.endpoint, count));
    }
    std::this_thread::sleep_for(300ms);
    {
        auto slow = open_connections(t.endpoint, 500, "GET /healthz HTTP/1.1\r\nX-Slow: ");
        std::atomic<bool> done{false};
        std::thread drip([&] {
            while (!done) {
                for (auto& fd : slow) (void)!::send(fd.get(), "a", 1, MSG_NOSIGNAL);
                for (int i = 0; i < 10 && !done; ++i) std::this_thread::sleep_for(100ms);
            }
        });
        fmt::print("  {:<10} {}\n", "slowloris", probes(t.endpoint, count));
        done = true;
        drip.join();
    }
    std::this_thread::sleep_for(300ms);
    {
        auto half = open_connections(t.endpoint, 500,
                                     "POST /counter/flood/increment HTTP/1.1\r\nHost: "
                                     "b\r\nContent-Length: 100000\r\n\r\n0123");
        std::this_thread::sleep_for(300ms);
        fmt::print("  {:<10} {}\n", "half-sent", probes(t.endpoint, count));
    }
}

// RLIMIT_NOFILE 256 for whatever starts inside `start`, then 600 connections.
void emfile(const std::string& name, const std::function<Target()>& start)
{
    rlimit mine{};
    ::getrlimit(RLIMIT_NOFILE, &mine);
    rlimit low = mine;
    low.rlim_cur = 256;
    ::setrlimit(RLIMIT_NOFILE, &low);
    Target t = start();
    ::setrlimit(RLIMIT_NOFILE, &mine);
    auto flood = open_connections(t.endpoint, 600);
    const std::size_t opened = flood.size();
    std::this_thread::sleep_for(1s);
    const auto pids = process_tree(t.master);
    const double before = cpu_seconds(pids);
    std::this_thread::sleep_for(5s);
    const double used = cpu_seconds(pids) - before;
    flood.clear();
    const auto start_wait = Clock::now();
    std::optional<double> answered;
    while (!answered && Clock::now() - start_wait < 10s) answered = probe(t.endpoint, 1s);
    fmt::print("{}\n  {:<10} {} connections, CPU {:.2f} s in 5 s ({:.0f}% of one core); after "
               "they closed, /healthz answered after {:.1f} ms\n",
               name, "emfile", opened, used, used / 5 * 100,
               std::chrono::duration<double, std::milli>(Clock::now() - start_wait).count());
}

class Nginx {
public:
    Nginx() : dir_("bench-nginx")
    {
        port_ = 18000 + static_cast<int>(::getpid() % 1000);
        std::ofstream(dir_.path() / "nginx.conf") << fmt::format(
            "worker_processes 2; daemon off; pid {0}/nginx.pid; error_log {0}/error.log;\n"
            "events {{ worker_connections 4096; }}\n"
            "http {{ access_log off; server {{ listen 127.0.0.1:{1}; location / {{ return 200 "
            "'{{\"status\":\"ok\"}}'; }} }} }}\n",
            dir_.path().string(), port_);
        child_ = std::make_unique<Child>([this] {
            const std::string prefix = dir_.path().string(), conf = prefix + "/nginx.conf";
            ::execlp("nginx", "nginx", "-p", prefix.c_str(), "-c", conf.c_str(), nullptr);
            return 127;
        });
        if (!wait_until([&] { return probe(endpoint(), 200ms).has_value(); }, 10s, 50ms))
            throw std::runtime_error("nginx did not answer");
    }
    // TERM lets the master stop its workers; the Child's SIGKILL would orphan them.
    ~Nginx()
    {
        ::kill(child_->pid(), SIGTERM);
        (void)child_->wait(std::chrono::seconds(10));
    }
    Nginx(const Nginx&) = delete;
    Nginx& operator=(const Nginx&) = delete;

    Endpoint endpoint() const { return {"127.0.0.1", static_cast<std::uint16_t>(port_)}; }
    Target target() const { return {"nginx, 2 workers", endpoint(), child_->pid()}; }

private:
    TempDir dir_;
    int port_ = 0;
    std::unique_ptr<Child> child_;
};

} // namespace

int main(int argc, char** argv)
{
    std::string forklock =
        std::getenv("FORKLOCK_BIN") ? std::getenv("FORKLOCK_BIN") : "build/server/forklock";
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    bool nginx = true;
    int count = 200;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--forklock" && i + 1 < argc)
            forklock = argv[++i];
        else if (a == "--no-nginx")
            nginx = false;
        else if (a == "--probes" && i + 1 < argc)
            count = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr,
                         "usage: bench_floods [--forklock PATH] [--no-nginx] [--probes N]\n");
            return 2;
        }
    }
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max; // the floods need a few thousand client sockets
    ::setrlimit(RLIMIT_NOFILE, &limit);
    auto start_forklock = [&] {
        ServerSpec spec;
        spec.binary = forklock;
        spec.args = {"-w", "2", "--preload"};
        spec.workers = 2;
        return std::make_unique<ServerProcess>(spec);
    };
    fmt::print("GET /healthz on a fresh connection, {} probes per flood ({})\n", count, forklock);
    {
        auto server = start_forklock();
        floods({"forklock -w 2", server->endpoint(), server->pid()}, count);
    }
    if (nginx) {
        Nginx n;
        floods(n.target(), count);
    }
    std::unique_ptr<ServerProcess> low;
    emfile("forklock -w 2, ulimit -n 256", [&] {
        low = start_forklock();
        return Target{"", low->endpoint(), low->pid()};
    });
    low.reset();
    if (nginx) {
        std::unique_ptr<Nginx> n;
        emfile("nginx, 2 workers, ulimit -n 256", [&] {
            n = std::make_unique<Nginx>();
            return n->target();
        });
    }
    return 0;
}
