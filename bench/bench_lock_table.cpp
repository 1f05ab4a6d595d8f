// bench_lock_table: what one lock-table operation costs, per mode, side by side in one run.
//
//   build/bench/bench_lock_table [seconds-per-figure]
//
// Figures: lock+unlock cycling over 1, 1,000 and 100,000 distinct keys (ns/op; 1 key is the
// uncontended figure, taken with a second thread alive so glibc takes its multi-threaded path;
// each figure in a table of its own of capacity 1024, so 100,000 keys means every operation evicts
// an idle key and binds a new one); and two forked processes hammering one key (ops/s summed).

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "locks/lock_table.h"
#include "locks/primitives/pthread_mutex.h"
#include "os/memory_region.h"
#include "os/named_semaphore.h"

using namespace forklock;
using Clock = std::chrono::steady_clock;

namespace {

double g_seconds = 0.5;

constexpr std::size_t kCapacity = 1024;

LockTable make_table(LockMode mode, const std::filesystem::path& dir,
                     std::size_t capacity = kCapacity)
{
    LockTableOptions o;
    o.mode = mode;
    o.capacity = capacity;
    o.lock_dir = dir;
    return LockTable(o);
}

// n keys of 13 bytes: PREFIX:00000000, PREFIX:00000001, ... (a 4-byte prefix per figure, so
// figures whose tables share a flock lock directory share no lock file either).
std::vector<std::string> make_keys(std::size_t n, std::string_view prefix = "user")
{
    std::vector<std::string> keys;
    keys.reserve(n);
    for (std::size_t i = 0; i < n; ++i) keys.push_back(fmt::format("{}:{:08}", prefix, i));
    return keys;
}

constexpr int kRepeats = 5;

// Runs: the kRepeats results of one figure. This VM shares its cores with other machines, so
// each figure is printed as its median and its best run: the median says what to expect, the
// best what the code costs when nothing else interferes (interference only ever adds time, so
// the best run is the one closest to the code's own cost, as Python's timeit argues).
struct Runs {
    std::vector<double> values;
    double median() const
    {
        std::vector<double> v = values;
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    }
    double lowest() const { return *std::min_element(values.begin(), values.end()); }
    double highest() const { return *std::max_element(values.begin(), values.end()); }
};

// kRepeats runs of f(seconds), after one warm-up run.
template <typename F>
Runs repeated_runs(F&& f)
{
    Runs runs;
    (void)f(g_seconds /
            kRepeats); // warm-up, not counted: a fresh table's first touches fault pages in
    for (int i = 0; i < kRepeats; ++i) runs.values.push_back(f(g_seconds / kRepeats));
    return runs;
}

// ns per lock+unlock, cycling through `keys`, for about `seconds`.
double ns_per_op_once(LockTable& table, const std::vector<std::string>& keys, double seconds)
{
    std::size_t ops = 0;
    const auto start = Clock::now();
    const auto stop = start + std::chrono::duration<double>(seconds);
    std::size_t i = 0;
    do {
        for (int batch = 0; batch < 1000; ++batch) {
            KeyGuard g = table.lock(keys[i]);
            if (++i == keys.size()) i = 0;
        }
        ops += 1000;
    } while (Clock::now() < stop);
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / double(ops);
}

// A figure: keys cycled through a table.
struct KeySet {
    LockTable* table;
    std::vector<std::string> keys;
};

// The figures' runs interleaved, so that a slow minute on this machine falls on all of them alike
// and their ratios stay fair. Before its warm-up, a set that fits in its table is bound key by key
// (untimed), so its runs measure keys already in the table: a time-limited warm-up might not get
// through them all (in flock mode a new key creates its lock file: 0.7 ms each on one VM's ext4).
std::vector<Runs> ns_per_op_interleaved(const std::vector<KeySet>& sets)
{
    std::vector<Runs> runs(sets.size());
    const double seconds = g_seconds / kRepeats;
    for (const KeySet& set : sets) {
        if (set.keys.size() <= set.table->options().capacity)
            for (const auto& key : set.keys) KeyGuard g = set.table->lock(key);
        (void)ns_per_op_once(*set.table, set.keys, seconds); // warm-up
    }
    for (int i = 0; i < kRepeats; ++i)
        for (std::size_t k = 0; k < sets.size(); ++k)
            runs[k].values.push_back(ns_per_op_once(*sets[k].table, sets[k].keys, seconds));
    return runs;
}

// Two processes lock/unlock one key as fast as they can; total ops/s.
double contended_ops_per_sec_once(LockTable& table, double seconds)
{
    MemoryRegion shared(sizeof(std::atomic<long>) * 2, MemoryRegion::Sharing::shared);
    auto* counts = static_cast<std::atomic<long>*>(shared.data());
    std::vector<pid_t> kids;
    for (int p = 0; p < 2; ++p) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            const auto stop = Clock::now() + std::chrono::duration<double>(seconds);
            long n = 0;
            do {
                for (int b = 0; b < 256; ++b) {
                    KeyGuard g = table.lock("hot");
                }
                n += 256;
            } while (Clock::now() < stop);
            counts[p] = n;
            ::_exit(0);
        }
        kids.push_back(pid);
    }
    for (pid_t k : kids) ::waitpid(k, nullptr, 0);
    return double(counts[0] + counts[1]) / seconds;
}

Runs contended_ops_per_sec(LockTable& table)
{
    return repeated_runs(
        [&](double seconds) { return contended_ops_per_sec_once(table, seconds); });
}

void bench_mode(LockMode mode, const std::filesystem::path& dir)
{
    // A table per figure: in one table, the 100,000-key runs would evict the 1,000 keys between
    // their runs, and each 1,000-key run would start by binding them again.
    LockTable table_1 = make_table(mode, dir);
    LockTable table_1k = make_table(mode, dir);
    LockTable table_100k = make_table(mode, dir);
    const auto ns = ns_per_op_interleaved({{&table_1, make_keys(1, "one_")},
                                           {&table_1k, make_keys(1000, "1k__")},
                                           {&table_100k, make_keys(100000, "100k")}});
    const Runs& one = ns[0];
    const Runs& many = ns[2];
    const Runs contended = contended_ops_per_sec(table_1);
    auto cell = [](double median, double best) {
        return fmt::format("{:.1f} ({:.1f})", median, best);
    };
    fmt::print(
        "{:<10} {:>16} {:>16} {:>18} {:>13} {:>24}\n", to_string(mode),
        cell(one.median(), one.lowest()), cell(ns[1].median(), ns[1].lowest()),
        cell(many.median(), many.lowest()),
        fmt::format("{:.2f}x ({:.2f}x)", many.median() / one.median(),
                    many.lowest() / one.lowest()),
        fmt::format("{:.2f}M ({:.2f}M)", contended.median() / 1e6, contended.highest() / 1e6));
}

// The other way to serve 100,000 keys: a table big enough to keep them all bound, so nothing is
// ever evicted. (Not semaphore mode, which maps a page per slot, nor flock, which would leave
// 100,000 lock files.) Each lock then reaches a slot in a 25 MB table: main memory, not cache.
void bench_table_holding_all_keys()
{
    const std::filesystem::path unused;
    std::string line;
    for (LockMode mode : {LockMode::none, LockMode::thread, LockMode::mutex}) {
        LockTable table = make_table(mode, unused, 131072);
        const auto ns =
            ns_per_op_interleaved({{&table, make_keys(1)}, {&table, make_keys(100000)}});
        line += fmt::format("  {} {:.1f} ({:.1f}) = {:.2f}x ({:.2f}x) 1 key;", to_string(mode),
                            ns[1].median(), ns[1].lowest(), ns[1].median() / ns[0].median(),
                            ns[1].lowest() / ns[0].lowest());
    }
    fmt::print("100k keys with capacity 131072 (nothing evicted), ns/op:{}\n", line);
}

// The bare primitives under the table, lock + unlock with nothing around them, so the table's
// own cost can be read off on this machine (it is a few times slower than the one in
// ../shared/research/locks.md).
template <typename Op>
Runs ns_per_raw_op(Op&& op)
{
    return repeated_runs([&](double seconds) {
        const auto start = Clock::now();
        const auto stop = start + std::chrono::duration<double>(seconds);
        std::size_t ops = 0;
        do {
            for (int i = 0; i < 1000; ++i) op();
            ops += 1000;
        } while (Clock::now() < stop);
        return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / double(ops);
    });
}

void bench_raw_primitives()
{
    MemoryRegion shared(4096, MemoryRegion::Sharing::shared);
    auto* robust = static_cast<pthread_mutex_t*>(shared.data());
    init_mutex(robust, MutexKind::shared_robust);
    pthread_mutex_t plain;
    init_mutex(&plain, MutexKind::private_default);
    NamedSemaphore sem =
        NamedSemaphore::create_unlinked(fmt::format("/forklock.{}.bench", ::getpid()), 1);
    const Runs m = ns_per_raw_op([&] {
        lock_mutex(&plain);
        unlock_mutex(&plain);
    });
    const Runs r = ns_per_raw_op([&] {
        lock_mutex(robust);
        unlock_mutex(robust);
    });
    const Runs s = ns_per_raw_op([&] {
        (void)sem.try_wait();
        sem.post();
    });
    fmt::print("raw primitives, ns per lock+unlock, median (best): std::mutex {:.1f} ({:.1f}), "
               "robust pshared mutex {:.1f} ({:.1f}), sem_trywait+sem_post {:.1f} ({:.1f})\n",
               m.median(), m.lowest(), r.median(), r.lowest(), s.median(), s.lowest());
}

} // namespace

int main(int argc, char** argv)
{
    if (argc > 1) g_seconds = std::atof(argv[1]);
    if (g_seconds <= 0 || g_seconds > 60) {
        std::fprintf(stderr, "usage: bench_lock_table [seconds-per-figure, 0 < s <= 60]\n");
        return 2;
    }
    char tmpl[] = "/tmp/forklock-bench-XXXXXX";
    const std::filesystem::path dir = ::mkdtemp(tmpl);
    std::atomic<bool> stop{false};
    std::thread idle([&] {
        while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    });
    fmt::print(
        "{} cores, {:.2f} s per figure in {} runs, printed as median (best); capacity {} slots\n",
        std::thread::hardware_concurrency(), g_seconds, kRepeats, kCapacity);
    bench_raw_primitives();
    fmt::print("{:<10} {:>16} {:>16} {:>18} {:>13} {:>24}\n", "mode", "ns/op: 1 key", "1k keys",
               "100k keys", "100k/1", "2 processes, 1 key ops/s");
    for (LockMode m :
         {LockMode::none, LockMode::thread, LockMode::semaphore, LockMode::mutex, LockMode::flock})
        bench_mode(m, dir);
    bench_table_holding_all_keys();
    stop = true;
    idle.join();
    std::filesystem::remove_all(dir);
    return 0;
}
