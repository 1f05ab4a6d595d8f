// compare_pgbench: the postgres lock mode against pgbench doing the same lock and unlock, on one
// throwaway PostgreSQL 15 (issue 14, Performance). forklock -w 4 --preload --lock-mode postgres
// serves hot-key increments to wrk -t1 -c16; pgbench -c16 -j2 -n runs
//   SELECT pg_advisory_lock(1); SELECT pg_advisory_unlock(1);
// as its transaction, in simple protocol (what forklock's PgSession sends: PQexec of a text
// query) and, for reference, -M prepared. They take turns within each run; the figures are the
// medians of the runs with the spread [min..max], a ratio the median of the per-run ratios. Then
// the cost of one try_lock round trip (pg_round_trips.h, as bench_postgres prints it).
//   build/bench/compare_pgbench [--runs N] [--seconds S] [--forklock PATH]
// A program rather than a script: the cluster is the tests' own harness::PgCluster (initdb in a
// temporary directory, a Unix socket only, `nobody` under root, stopped and removed by its
// destructor), and the server a harness::ServerProcess, both cleaned up however this ends: an
// error, or Ctrl-C (checked between measurements). Loopback only; prints, asserts nothing.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "harness/pg_cluster.h"
#include "harness/server_process.h"
#include "harness/temp_dir.h"
#include "pg_round_trips.h"

namespace {

using forklock::harness::PgCluster;
using forklock::harness::ServerProcess;

constexpr const char* kPgbench = "/usr/lib/postgresql/15/bin/pgbench";
std::atomic<bool> g_stop{false};

struct Settings {
    int runs = 5;
    int seconds = 4;
    std::string forklock = "build/server/forklock";
};

Settings parse(int argc, char** argv)
{
    Settings s;
    if (const char* bin = std::getenv("FORKLOCK_BIN")) s.forklock = bin;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--runs")
            s.runs = std::max(1, std::atoi(argv[i + 1]));
        else if (flag == "--seconds")
            s.seconds = std::max(1, std::atoi(argv[i + 1]));
        else if (flag == "--forklock")
            s.forklock = argv[i + 1];
        else
            throw std::invalid_argument("unknown flag " + flag);
    }
    return s;
}

// run: `command` through the shell; its stdout. Throws when it cannot be started or fails.
std::string run(const std::string& command)
{
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
    std::string out;
    char buffer[4096];
    while (std::size_t got = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, got);
    if (::pclose(pipe) != 0) throw std::runtime_error(fmt::format("{} failed:\n{}", command, out));
    return out;
}

// number_after: the number that follows `label` in `text`; 0 when there is none.
double number_after(const std::string& text, const std::string& label)
{
    const auto at = text.find(label);
    return at == std::string::npos ? 0 : std::atof(text.c_str() + at + label.size());
}

struct Spread {
    double median = 0, min = 0, max = 0;
};

Spread spread(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    const double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return {median, v.front(), v.back()};
}

std::vector<double> ratios(const std::vector<double>& a, const std::vector<double>& b)
{
    std::vector<double> out;
    for (std::size_t i = 0; i < a.size(); ++i) out.push_back(b[i] > 0 ? a[i] / b[i] : 0);
    return out;
}

std::string loadavg()
{
    std::ifstream in("/proc/loadavg");
    std::string one, five, fifteen;
    in >> one >> five >> fifteen;
    return fmt::format("{} {} {}", one, five, fifteen);
}

void write_file(const std::filesystem::path& path, const std::string& text)
{
    std::ofstream(path) << text;
}

struct Commands {
    std::string wrk, simple, prepared;
};

Commands commands(const Settings& s, const PgCluster& cluster,
                  const forklock::harness::TempDir& tmp, const ServerProcess& server)
{
    write_file(tmp.path() / "post.lua", "wrk.method = \"POST\"\n");
    write_file(tmp.path() / "lock.sql",
               "SELECT pg_advisory_lock(1);\nSELECT pg_advisory_unlock(1);\n");
    const auto pgbench = [&](const char* protocol) {
        return fmt::format("{} -h {} -p 5432 -U forklock -n -M {} -f {} -c16 -j2 -T{} postgres",
                           kPgbench, cluster.directory().string(), protocol,
                           (tmp.path() / "lock.sql").string(), s.seconds);
    };
    return {fmt::format("wrk -t1 -c16 -d{}s -s {} http://127.0.0.1:{}/counter/hot/increment",
                        s.seconds, (tmp.path() / "post.lua").string(), server.port()),
            pgbench("simple"), pgbench("prepared")};
}

struct Figures {
    std::vector<double> forklock, simple, prepared; // req/s, tps, tps: one per run
    double non_2xx = 0;
};

// measure: the runs, each one wrk then pgbench simple then prepared; fewer after Ctrl-C.
Figures measure(const Settings& s, const Commands& c)
{
    Figures f;
    for (int i = 0; i < s.runs && !g_stop; ++i) {
        const std::string w = run(c.wrk);
        const double simple = number_after(run(c.simple), "tps = ");
        const double prepared = number_after(run(c.prepared), "tps = ");
        if (g_stop) break; // a tool cut short by the terminal's Ctrl-C measured nothing
        f.forklock.push_back(number_after(w, "Requests/sec:"));
        f.non_2xx += number_after(w, "Non-2xx or 3xx responses:");
        f.simple.push_back(simple);
        f.prepared.push_back(prepared);
        std::printf("  run %d: forklock %.0f req/s, pgbench simple %.0f tps, prepared %.0f tps\n",
                    i + 1, f.forklock.back(), simple, prepared);
        std::fflush(stdout);
    }
    return f;
}

void report(const Figures& f)
{
    const auto row = [](const char* what, const Spread& x, const char* unit) {
        std::printf("%-52s %8.0f %s [%.0f..%.0f]\n", what, x.median, unit, x.min, x.max);
    };
    std::printf("lock + unlock of one hot key, 16 clients (median [min..max]):\n");
    row("forklock postgres mode, POST /counter/hot/increment", spread(f.forklock), "req/s");
    row("pgbench -M simple, pg_advisory_lock + unlock", spread(f.simple), "tps  ");
    row("pgbench -M prepared, pg_advisory_lock + unlock", spread(f.prepared), "tps  ");
    const Spread simple = spread(ratios(f.forklock, f.simple));
    const Spread prepared = spread(ratios(f.forklock, f.prepared));
    std::printf("forklock / pgbench simple = %.2f [%.2f..%.2f] (goal >= 0.5); / prepared = "
                "%.2f [%.2f..%.2f]; non-2xx replies: %.0f\n",
                simple.median, simple.min, simple.max, prepared.median, prepared.min, prepared.max,
                f.non_2xx);
}

int compare(const Settings& s)
{
    if (::access(kPgbench, X_OK) != 0 || std::system("command -v wrk >/dev/null") != 0)
        throw std::runtime_error("needs wrk and pgbench: apt-get install wrk postgresql-15");
    const PgCluster cluster;
    const forklock::harness::TempDir tmp("forklock-pgbench");
    forklock::harness::ServerSpec spec;
    spec.binary = s.forklock;
    spec.args = {"-w",       "4",          "--preload",        "--lock-mode",
                 "postgres", "--lock-url", cluster.conninfo(), "--log-level",
                 "info"};
    spec.workers = 4;
    const ServerProcess server(spec);
    const Commands c = commands(s, cluster, tmp, server);
    std::printf("%ld cores; load before: %s; %d runs of %d s each, taking turns:\n",
                ::sysconf(_SC_NPROCESSORS_ONLN), loadavg().c_str(), s.runs, s.seconds);
    std::printf("  forklock %s\n  %s\n  %s\n  %s\n",
                fmt::format("{}", fmt::join(spec.args, " ")).c_str(), c.wrk.c_str(),
                c.simple.c_str(), c.prepared.c_str());
    std::fflush(stdout);
    // Before the load: its aftermath (a busy machine, PostgreSQL's own work) doubled this figure.
    const auto trips = forklock::bench::measure_round_trips(cluster.conninfo(), 2000);
    const Figures f = measure(s, c);
    if (f.forklock.empty()) return 130;
    report(f);
    std::printf("round trips (bench_postgres), before the runs: try_lock refused %.1f us, "
                "lock + unlock %.1f us; load after: %s\n",
                trips.refused_us, trips.lock_unlock_us, loadavg().c_str());
    return g_stop ? 130 : 0;
}

} // namespace

int main(int argc, char** argv)
{
    std::signal(SIGINT, [](int) { g_stop = true; });
    std::signal(SIGTERM, [](int) { g_stop = true; });
    try {
        return compare(parse(argc, argv));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "compare_pgbench: %s\n", e.what());
        return g_stop ? 130 : 1;
    }
}
