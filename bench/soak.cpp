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
//
// Leases (--lease-ms N, the modes that take a key over: semaphore): three chaos events in four are
// a SIGSTOP of a random worker for --pause-ms (4 x the lease), then SIGCONT, so a paused
// holder's key is taken and the holder wakes to write late. With --fencing the store refuses
// those writes (409, not acknowledged) and the checks above must hold. Without it the run is the
// demonstration: the witness must catch the loss (a value acknowledged twice, or final below the
// acknowledgements); a run that shows none is reported UNCLEAR (exit 3), never safe. Each
// increment waits --write-delay-ms (default: half the lease) after its last still_held() check,
// before its write: shorter than the lease, so only a pause that falls there loses.

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
    int lease_ms = 0;  // > 0: --lock-lease-ms, and SIGSTOP pauses in the chaos
    int pause_ms = 0;  // how long a pause lasts (0: 3 x the lease)
    int hold_ms = 0;   // each increment's hold_ms
    int write_delay_ms = -1; // each increment's write_delay_ms (-1: with a lease, half of it)
    bool fencing = false;
    std::string server;
    unsigned seed = std::random_device{}();
};

// A mode as --modes names it: "flock" alone runs without preload, "flock+preload" with it; the
// other modes always preload, the only way semaphore and mutex are shared at all.
std::vector<std::string> server_args(const std::string& mode, const SoakOptions& o)
{
    const bool plain_flock = mode == "flock";
    std::string name = mode.substr(0, mode.find('+'));
    std::vector<std::string> args{"--lock-mode", name, "-w", std::to_string(o.workers)};
    if (!plain_flock) args.emplace_back("--preload");
    if (o.lease_ms > 0) args.insert(args.end(), {"--lock-lease-ms", std::to_string(o.lease_ms)});
    if (o.fencing) args.emplace_back("--fencing");
    return args;
}

// The run that shows the loss: leases, pauses longer than them, and no fencing.
bool expects_loss(const SoakOptions& o) { return o.lease_ms > 0 && !o.fencing; }

std::string key_name(int k) { return fmt::format("soak-{}", k); }

// The acknowledged values per key, from every client thread.
struct Acks {
    std::mutex mutex;
    std::map<std::string, std::vector<std::uint64_t>> values;
    std::atomic<long> sent{0}, failed{0}, refused{0}; // refused: 409, a stale token (--fencing)

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
        if (r.status == 409) ++acks.refused;
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
    const std::string query =
        fmt::format("?hold_ms={}&write_delay_ms={}", o.hold_ms, std::max(o.write_delay_ms, 0));
    while (!stop.load()) increment(to, key_name(key(rng)), acks, query.c_str());
}

// Every 100-300 ms until `until`, kills a random worker, or (with a lease, three times in four)
// SIGSTOPs one for `pause_ms` and lets it go on. Returns the kills and the pauses.
std::pair<int, int> chaos(const ServerProcess& server, std::mt19937& rng, Clock::time_point until,
                          std::set<pid_t>& seen, int pause_ms)
{
    std::uniform_int_distribution<int> interval_ms(100, 300);
    int kills = 0, pauses = 0;
    const auto start = Clock::now();
    while (Clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms(rng)));
        std::set<pid_t> pids = server.worker_pids(2s);
        seen.insert(pids.begin(), pids.end());
        if (pids.empty()) continue;
        auto victim = std::next(pids.begin(), std::uniform_int_distribution<long>(
                                                  0, static_cast<long>(pids.size()) - 1)(rng));
        const double at = std::chrono::duration<double>(Clock::now() - start).count();
        if (pause_ms > 0 && (kills + pauses) % 4 != 3) {
            if (::kill(*victim, SIGSTOP) != 0) continue;
            std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
            ::kill(*victim, SIGCONT);
            ++pauses;
            fmt::print("  kill -STOP {} at {:.3f} s for {} ms\n", *victim, at, pause_ms);
            continue;
        }
        if (::kill(*victim, SIGKILL) != 0) continue;
        ++kills;
        fmt::print("  kill -9 {} at {:.3f} s\n", *victim, at);
    }
    return {kills, pauses};
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
    int losses = 0; // lost or duplicated increments the witness caught
    void check(bool ok, const std::string& what)
    {
        fmt::print("  {} {}\n", ok ? "ok  " : "FAIL", what);
        violations += !ok;
    }
    // witness: a check the demonstration run is expected to fail (the loss it shows).
    void witness(bool ok, const std::string& what, bool expect_loss)
    {
        if (!expect_loss) return check(ok, what);
        fmt::print("  {} {}\n", ok ? "--  " : "LOSS", what);
        losses += !ok;
    }
};

// The witness and durability checks of one key, against its final value.
void check_key(Verdict& v, const std::string& key, std::vector<std::uint64_t> values,
               std::uint64_t final_value, bool expect_loss)
{
    std::sort(values.begin(), values.end());
    fmt::print("  {}: {} acknowledged, final {}: {}\n", key, values.size(), final_value,
               runs(values));
    std::vector<std::uint64_t> duplicates;
    for (std::size_t i = 1; i < values.size(); ++i)
        if (values[i] == values[i - 1] && (duplicates.empty() || duplicates.back() != values[i]))
            duplicates.push_back(values[i]);
    v.witness(duplicates.empty(),
              fmt::format("{}: no value acknowledged twice{}", key,
                          duplicates.empty() ? "" : " (twice: " + runs(duplicates) + ")"),
              expect_loss);
    v.check(values.empty() || (values.front() >= 1 && values.back() <= final_value),
            fmt::format("{}: every acknowledged value in 1..{}", key, final_value));
    v.witness(final_value >= values.size(),
              fmt::format("{}: final {} >= {} acknowledged ({} unacknowledged but written)", key,
                          final_value, values.size(),
                          final_value >= values.size() ? final_value - values.size() : 0),
              expect_loss);
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

// soak_mode: the violations of `mode`'s run; `unclear`: a demonstration run that caught no loss.
int soak_mode(const std::string& mode, const SoakOptions& o, bool& unclear)
{
    fmt::print("== {}: {} workers, {} clients, {} keys, {:.0f} s{}\n", mode, o.workers, o.clients,
               o.keys, o.seconds,
               o.lease_ms > 0 ? fmt::format(", lease {} ms, pauses {} ms, {}", o.lease_ms,
                                            o.pause_ms, o.fencing ? "fencing" : "no fencing")
                              : "");
    ServerSpec spec;
    spec.binary = o.server;
    spec.args = server_args(mode, o);
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
    const auto [kills, pauses] = chaos(server, rng, until, seen, o.lease_ms > 0 ? o.pause_ms : 0);
    stop = true;
    for (auto& t : clients) t.join();
    fmt::print("  {} kills, {} pauses; {} increments sent, {} acknowledged, {} failed ({} refused "
               "as stale)\n",
               kills, pauses, acks.sent.load(), acks.sent.load() - acks.failed.load(),
               acks.failed.load(), acks.refused.load());

    Verdict v;
    v.check(wait_until([&] { return server.worker_pids(1s).size() == std::size_t(o.workers); }, 15s,
                       50ms),
            fmt::format("{} workers serving again", o.workers));
    check_unlocked(v, server, o, acks);
    for (int k = 0; k < o.keys; ++k) {
        auto body = http_request(server.endpoint(), "GET", "/counter/" + key_name(k), 5s).json();
        std::uint64_t final_value = body.is_discarded() ? 0 : body.value("value", std::uint64_t{0});
        check_key(v, key_name(k), acks.values[key_name(k)], final_value, expects_loss(o));
    }
    std::set<pid_t> now = server.worker_pids(2s);
    seen.insert(now.begin(), now.end());
    check_clean(v, server, seen);
    if (expects_loss(o)) {
        unclear = v.losses == 0;
        fmt::print("== {}: without fencing the witness {}\n", mode,
                   unclear ? "caught no loss: UNCLEAR (not safe: the pauses may have missed "
                             "every holder)"
                           : fmt::format("caught the loss ({} checks)", v.losses));
    }
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
    app.add_option("--lease-ms", o.lease_ms,
                   "the server's --lock-lease-ms; the chaos adds SIGSTOP pauses longer than it")
        ->check(CLI::Range(1, 60000));
    app.add_option("--pause-ms", o.pause_ms, "how long a pause lasts (default 4 x the lease)")
        ->check(CLI::Range(1, 600000));
    app.add_option("--hold-ms", o.hold_ms, "each increment's hold_ms")->check(CLI::Range(0, 1000));
    app.add_option("--write-delay-ms", o.write_delay_ms,
                   "each increment's write_delay_ms: the window after its last lock check, where "
                   "a pause loses (default with a lease: half the lease)")
        ->check(CLI::Range(0, 1000));
    app.add_flag("--fencing", o.fencing, "the server's --fencing: late writes are refused");
    CLI11_PARSE(app, argc, argv);
    if (o.lease_ms > 0 && app.count("--modes") == 0) o.modes = {"semaphore"}; // the leased modes
    if (o.lease_ms > 0 && o.pause_ms == 0) o.pause_ms = 4 * o.lease_ms;
    if (o.write_delay_ms < 0) o.write_delay_ms = o.lease_ms / 2;
    if (o.lease_ms > 0 && o.pause_ms <= o.lease_ms)
        fmt::print("forklock-soak: note: pauses of {} ms do not outlast the {} ms lease\n",
                   o.pause_ms, o.lease_ms);
    fmt::print("forklock-soak: seed {}, server {}\n", o.seed, o.server);
    int violations = 0, unclear_modes = 0;
    for (const auto& mode : o.modes) {
        bool unclear = false;
        try {
            violations += soak_mode(mode, o, unclear);
        } catch (const std::exception& e) {
            fmt::print("== {}: FAIL: {}\n", mode, e.what());
            ++violations;
        }
        unclear_modes += unclear;
    }
    fmt::print("forklock-soak: {} violations in {} modes{}\n", violations, o.modes.size(),
               unclear_modes ? fmt::format(", {} UNCLEAR", unclear_modes) : "");
    if (violations != 0) return 1;
    return unclear_modes == 0 ? 0 : 3;
}
