// forklock-soak: the chaos soak. For each mode, a real server with several workers; client
// threads post increments on a few keys while a random worker is SIGKILLed every 100-300 ms (the
// master respawns it). Then the checks, each printed with its result:
//  - witness: every 2xx increment answers the key's new value, so in a linearizable counter no
//    two acknowledgements of one key carry the same value, and each lies in 1..final;
//  - durability: final >= the acknowledgements (final may exceed them: a worker killed after its
//    write and before its answer made an increment nobody was told about);
//  - no key is held afterwards (/locks, and every key can be taken within a deadline);
//  - nothing is left: no process of the server's group, no /dev/shm name of its pids.
// Exits 1 on any violation. Run it in mode none or thread to see the witness catch duplicates.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "harness/http_client.h"
#include "harness/server_process.h"
#include "harness/shm_names.h"
#include "harness/wait.h"

namespace {

using namespace forklock::harness;
using namespace std::chrono_literals;

struct SoakOptions {
    double seconds = 10;
    std::vector<std::string> modes{"semaphore", "mutex", "flock", "flock+preload"};
    int keys = 4;
    int clients = 8;
    int workers = 3;
    std::string server;
    unsigned seed = std::random_device{}();
};

// A mode as --modes names it: "flock" alone runs without preload, "flock+preload" with it; the
// other modes always preload, the only way semaphore and mutex are shared at all.
std::vector<std::string> server_args(const std::string& mode, int workers)
{
    const bool plain_flock = mode == "flock";
    std::string name = mode.substr(0, mode.find('+'));
    std::vector<std::string> args{"--lock-mode", name, "-w", std::to_string(workers)};
    if (!plain_flock) args.emplace_back("--preload");
    return args;
}

std::string key_name(int k) { return fmt::format("soak-{}", k); }

// The acknowledged values per key, from every client thread.
struct Acks {
    std::mutex mutex;
    std::map<std::string, std::vector<std::uint64_t>> values;
    std::atomic<long> sent{0}, failed{0};

    void add(const std::string& key, std::uint64_t value)
    {
        std::lock_guard lock(mutex);
        values[key].push_back(value);
    }
};

// One increment; records its value when the answer is 2xx.
bool increment(const Endpoint& to, const std::string& key, Acks& acks, const char* query = "")
{
    ++acks.sent;
    HttpResponse r =
        http_request(to, "POST", fmt::format("/counter/{}/increment{}", key, query), 10s);
    auto body = r.json();
    if (!r.ok() || body.is_discarded() || !body.contains("value")) {
        ++acks.failed;
        return false;
    }
    acks.add(key, body["value"].get<std::uint64_t>());
    return true;
}

void client(const Endpoint& to, int id, const SoakOptions& o, Acks& acks,
            const std::atomic<bool>& stop)
{
    std::mt19937 rng(o.seed + static_cast<unsigned>(id));
    std::uniform_int_distribution<int> key(0, o.keys - 1);
    while (!stop.load()) increment(to, key_name(key(rng)), acks);
}

// Kills a random worker every 100-300 ms until `until`; returns how many it killed.
int chaos(const ServerProcess& server, std::mt19937& rng, Clock::time_point until,
          std::set<pid_t>& seen)
{
    std::uniform_int_distribution<int> pause_ms(100, 300);
    int kills = 0;
    const auto start = Clock::now();
    while (Clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
        std::set<pid_t> pids = server.worker_pids(2s);
        seen.insert(pids.begin(), pids.end());
        if (pids.empty()) continue;
        auto victim = std::next(pids.begin(), std::uniform_int_distribution<long>(
                                                  0, static_cast<long>(pids.size()) - 1)(rng));
        if (::kill(*victim, SIGKILL) != 0) continue;
        ++kills;
        fmt::print("  kill -9 {} at {:.3f} s\n", *victim,
                   std::chrono::duration<double>(Clock::now() - start).count());
    }
    return kills;
}

// "1-57, 59-130": the distinct values of `sorted`, in runs (a gap is an increment not
// acknowledged); past kMaxRuns runs, how many more.
std::string runs(const std::vector<std::uint64_t>& sorted)
{
    constexpr std::size_t kMaxRuns = 12;
    std::string out;
    std::size_t count = 0;
    for (std::size_t i = 0; i < sorted.size();) {
        std::size_t j = i;
        while (j + 1 < sorted.size() && sorted[j + 1] <= sorted[j] + 1) ++j;
        if (++count <= kMaxRuns) {
            if (!out.empty()) out += ", ";
            out += sorted[i] == sorted[j] ? fmt::format("{}", sorted[i])
                                          : fmt::format("{}-{}", sorted[i], sorted[j]);
        }
        i = j + 1;
    }
    if (count > kMaxRuns) out += fmt::format(" and {} more runs", count - kMaxRuns);
    return out;
}

struct Verdict {
    int violations = 0;
    void check(bool ok, const std::string& what)
    {
        fmt::print("  {} {}\n", ok ? "ok  " : "FAIL", what);
        violations += !ok;
    }
};

// The witness and durability checks of one key, against its final value.
void check_key(Verdict& v, const std::string& key, std::vector<std::uint64_t> values,
               std::uint64_t final_value)
{
    std::sort(values.begin(), values.end());
    fmt::print("  {}: {} acknowledged, final {}: {}\n", key, values.size(), final_value,
               runs(values));
    std::vector<std::uint64_t> duplicates;
    for (std::size_t i = 1; i < values.size(); ++i)
        if (values[i] == values[i - 1] && (duplicates.empty() || duplicates.back() != values[i]))
            duplicates.push_back(values[i]);
    v.check(duplicates.empty(),
            fmt::format("{}: no value acknowledged twice{}", key,
                        duplicates.empty() ? "" : " (twice: " + runs(duplicates) + ")"));
    v.check(values.empty() || (values.front() >= 1 && values.back() <= final_value),
            fmt::format("{}: every acknowledged value in 1..{}", key, final_value));
    v.check(final_value >= values.size(),
            fmt::format("{}: final {} >= {} acknowledged ({} unacknowledged but written)", key,
                        final_value, values.size(),
                        final_value >= values.size() ? final_value - values.size() : 0));
}

// No key held: /locks (several asks, so several workers answer) shows no owner, and each key can
// be incremented within a deadline (an acknowledgement like the others).
void check_unlocked(Verdict& v, const ServerProcess& server, const SoakOptions& o, Acks& acks)
{
    std::set<pid_t> owners;
    bool answered = false;
    for (int i = 0; i < 2 * o.workers; ++i) {
        auto body = http_request(server.endpoint(), "GET", "/locks", 5s).json();
        if (body.is_discarded() || !body.contains("keys")) continue;
        answered = true;
        for (const auto& k : body["keys"])
            if (k.value("owner_pid", 0) != 0) owners.insert(k.value("owner_pid", 0));
    }
    v.check(answered && owners.empty(),
            fmt::format("/locks: no key held{}", owners.empty() ? "" : " (owners found)"));
    int taken = 0;
    for (int k = 0; k < o.keys; ++k)
        taken += increment(server.endpoint(), key_name(k), acks, "?timeout_ms=5000");
    v.check(taken == o.keys, fmt::format("every key taken within 5 s ({} of {})", taken, o.keys));
}

// Nothing of the server is left once it is stopped: no process in its group, no semaphore name.
void check_clean(Verdict& v, ServerProcess& server, std::set<pid_t> pids)
{
    const pid_t group = server.pid();
    pids.insert(group);
    server.stop();
    errno = 0;
    bool gone = wait_until([&] { return ::kill(-group, 0) != 0 && errno == ESRCH; }, 10s, 10ms);
    v.check(gone, fmt::format("no process left in group {}", group));
    int names = semaphore_names_of(pids);
    v.check(names == 0, fmt::format("/dev/shm: no name of the server's {} pids ({} found)",
                                    pids.size(), names));
}

int soak_mode(const std::string& mode, const SoakOptions& o)
{
    fmt::print("== {}: {} workers, {} clients, {} keys, {:.0f} s\n", mode, o.workers, o.clients,
               o.keys, o.seconds);
    ServerSpec spec;
    spec.binary = o.server;
    spec.args = server_args(mode, o.workers);
    spec.workers = o.workers;
    spec.dir_prefix = "forklock-soak";
    ServerProcess server(spec);
    Acks acks;
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int i = 0; i < o.clients; ++i)
        clients.emplace_back(client, server.endpoint(), i, std::cref(o), std::ref(acks),
                             std::cref(stop));
    std::mt19937 rng(o.seed);
    std::set<pid_t> seen;
    const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(o.seconds));
    int kills = chaos(server, rng, until, seen);
    stop = true;
    for (auto& t : clients) t.join();
    fmt::print("  {} kills; {} increments sent, {} acknowledged, {} failed\n", kills,
               acks.sent.load(), acks.sent.load() - acks.failed.load(), acks.failed.load());

    Verdict v;
    v.check(wait_until([&] { return server.worker_pids(1s).size() == std::size_t(o.workers); }, 15s,
                       50ms),
            fmt::format("{} workers serving again", o.workers));
    check_unlocked(v, server, o, acks);
    for (int k = 0; k < o.keys; ++k) {
        auto body = http_request(server.endpoint(), "GET", "/counter/" + key_name(k), 5s).json();
        std::uint64_t final_value = body.is_discarded() ? 0 : body.value("value", std::uint64_t{0});
        check_key(v, key_name(k), acks.values[key_name(k)], final_value);
    }
    std::set<pid_t> now = server.worker_pids(2s);
    seen.insert(now.begin(), now.end());
    check_clean(v, server, seen);
    fmt::print("== {}: {} violations\n", mode, v.violations);
    return v.violations;
}

std::string default_server(const char* argv0)
{
    if (const char* env = std::getenv("FORKLOCK_BIN")) return env;
    return (std::filesystem::path(argv0).parent_path() / ".." / "server" / "forklock").string();
}

} // namespace

int main(int argc, char** argv)
{
    SoakOptions o;
    o.server = default_server(argv[0]);
    CLI::App app{"forklock-soak: increments under SIGKILL, checked for lost or duplicated values"};
    app.add_option("--seconds", o.seconds, "seconds of chaos per mode")
        ->check(CLI::Range(1, 86400));
    app.add_option("--modes", o.modes,
                   "semaphore, mutex, flock+preload (preloaded), flock (not), none, thread")
        ->delimiter(',');
    app.add_option("--keys", o.keys, "keys the clients increment")->check(CLI::Range(1, 64));
    app.add_option("--clients", o.clients, "client threads")->check(CLI::Range(1, 256));
    app.add_option("-w,--workers", o.workers, "server workers")->check(CLI::Range(1, 32));
    app.add_option("--server", o.server, "the forklock binary ($FORKLOCK_BIN)");
    app.add_option("--seed", o.seed, "random seed (keys and kills)");
    CLI11_PARSE(app, argc, argv);
    fmt::print("forklock-soak: seed {}, server {}\n", o.seed, o.server);
    int violations = 0;
    for (const auto& mode : o.modes) {
        try {
            violations += soak_mode(mode, o);
        } catch (const std::exception& e) {
            fmt::print("== {}: FAIL: {}\n", mode, e.what());
            ++violations;
        }
    }
    fmt::print("forklock-soak: {} violations in {} modes\n", violations, o.modes.size());
    return violations == 0 ? 0 : 1;
}
