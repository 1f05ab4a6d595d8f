// bench_lock_table: what one lock-table operation costs, per mode, side by side in one run.
//
//   build/bench/bench_lock_table [seconds-per-figure [mode]]
//
// With a mode (none, thread, semaphore, mutex, flock), only the primitives and that mode's row are
// printed: a quicker loop while working on one mode, or one to profile.
// Figures: the bare primitives (std::mutex, the robust process-shared mutex, sem_trywait+sem_post
// and the owner word the semaphore mode locks); lock+unlock cycling over 1, 1,000 and 100,000
// distinct keys (ns/op; 1 key is the uncontended figure, taken with a second thread alive so glibc
// takes its multi-threaded path; each figure in a table of its own of capacity 1024, so 100,000
// keys means every operation evicts an idle key and binds a new one); two forked processes
// hammering one key (ops/s summed, and hand-offs/s: how often the lock changed process); then
// every key bound at once, tables of capacity 131072 beside the seed's LockDict (a map of key to
// std::mutex under one std::mutex, one process), and the shared memory a table takes per key.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include <forklock/lock_table.h>
#include "locks/primitives/owner_word_lock.h"
#include "locks/primitives/pthread_mutex.h"
#include "locks/table/slot_table.h"
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

// The seed's LockDict in C++, the peer of the table's key handling: one process, a mutex per key
// in a map that only grows, under one mutex.
class LockDict {
public:
    std::unique_lock<std::mutex> lock(const std::string& key)
    {
        std::mutex* m = nullptr;
        {
            std::lock_guard guard(mutex_);
            m = &locks_[key];
        }
        return std::unique_lock(*m);
    }

private:
    std::mutex mutex_;
    std::unordered_map<std::string, std::mutex> locks_;
};

// ns per lock+unlock, cycling through `keys`, for about `seconds`.
template <typename Locker>
double ns_per_op_once(Locker& locker, const std::vector<std::string>& keys, double seconds)
{
    std::size_t ops = 0;
    const auto start = Clock::now();
    const auto stop = start + std::chrono::duration<double>(seconds);
    std::size_t i = 0;
    do {
        for (int batch = 0; batch < 1000; ++batch) {
            auto g = locker.lock(keys[i]);
            if (++i == keys.size()) i = 0;
        }
        ops += 1000;
    } while (Clock::now() < stop);
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / double(ops);
}

// A figure: keys cycled through a table or a LockDict. fill() binds every key (untimed) if they
// all fit; run(seconds) is one timed run.
struct KeySet {
    std::function<void()> fill;
    std::function<double(double)> run;
};

KeySet key_set(LockTable& table, std::vector<std::string> keys)
{
    auto shared = std::make_shared<std::vector<std::string>>(std::move(keys));
    return {[&table, shared] {
                if (shared->size() <= table.options().capacity)
                    for (const auto& key : *shared) KeyGuard g = table.lock(key);
            },
            [&table, shared](double s) { return ns_per_op_once(table, *shared, s); }};
}

KeySet key_set(LockDict& dict, std::vector<std::string> keys)
{
    auto shared = std::make_shared<std::vector<std::string>>(std::move(keys));
    return {[&dict, shared] {
                for (const auto& key : *shared) auto g = dict.lock(key);
            },
            [&dict, shared](double s) { return ns_per_op_once(dict, *shared, s); }};
}

// The figures' runs interleaved, so that a slow minute on this machine falls on all of them alike
// and their ratios stay fair. Before its warm-up, a set that fits in its table is bound key by key
// (untimed), so its runs measure keys already in the table: a time-limited warm-up might not get
// through them all (in flock mode a new key creates its lock file: 0.7 ms each on one VM's ext4).
std::vector<Runs> ns_per_op_interleaved(const std::vector<KeySet>& sets)
{
    std::vector<Runs> runs(sets.size());
    const double seconds = g_seconds / kRepeats;
    for (const KeySet& set : sets) {
        set.fill();
        (void)set.run(seconds); // warm-up
    }
    for (int i = 0; i < kRepeats; ++i)
        for (std::size_t k = 0; k < sets.size(); ++k)
            runs[k].values.push_back(sets[k].run(seconds));
    return runs;
}

// Two processes lock/unlock one key as fast as they can. Inside each critical section the holder
// notes whether the previous holder was the other process: a hand-off, the lock changing process.
struct Contended {
    double ops_per_sec;
    double handoffs_per_sec;
};

Contended contended_once(LockTable& table, double seconds)
{
    struct Counts {
        std::atomic<long> ops[2];
        std::atomic<long> handoffs[2];
        std::atomic<int> last_holder; // written only under the key's lock (but for mode none)
    };
    MemoryRegion shared(sizeof(Counts), MemoryRegion::Sharing::shared);
    auto* counts = new (shared.data()) Counts{};
    std::vector<pid_t> kids;
    for (int p = 0; p < 2; ++p) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            const auto stop = Clock::now() + std::chrono::duration<double>(seconds);
            long n = 0, handoffs = 0;
            do {
                for (int b = 0; b < 256; ++b) {
                    KeyGuard g = table.lock("hot");
                    if (counts->last_holder.load(std::memory_order_relaxed) != p + 1) {
                        counts->last_holder.store(p + 1, std::memory_order_relaxed);
                        ++handoffs;
                    }
                }
                n += 256;
            } while (Clock::now() < stop);
            counts->ops[p] = n;
            counts->handoffs[p] = handoffs;
            ::_exit(0);
        }
        kids.push_back(pid);
    }
    for (pid_t k : kids) ::waitpid(k, nullptr, 0);
    return {double(counts->ops[0] + counts->ops[1]) / seconds,
            double(counts->handoffs[0] + counts->handoffs[1]) / seconds};
}

std::pair<Runs, Runs> contended(LockTable& table)
{
    Runs ops, handoffs;
    (void)contended_once(table, g_seconds / kRepeats); // warm-up
    for (int i = 0; i < kRepeats; ++i) {
        const Contended c = contended_once(table, g_seconds / kRepeats);
        ops.values.push_back(c.ops_per_sec);
        handoffs.values.push_back(c.handoffs_per_sec);
    }
    return {ops, handoffs};
}

void bench_mode(LockMode mode, const std::filesystem::path& dir)
{
    // A table per figure: in one table, the 100,000-key runs would evict the 1,000 keys between
    // their runs, and each 1,000-key run would start by binding them again.
    LockTable table_1 = make_table(mode, dir);
    LockTable table_1k = make_table(mode, dir);
    LockTable table_100k = make_table(mode, dir);
    const auto ns = ns_per_op_interleaved({key_set(table_1, make_keys(1, "one_")),
                                           key_set(table_1k, make_keys(1000, "1k__")),
                                           key_set(table_100k, make_keys(100000, "100k"))});
    const Runs& one = ns[0];
    const Runs& many = ns[2];
    const auto [ops, handoffs] = contended(table_1);
    auto cell = [](double median, double best) {
        return fmt::format("{:.1f} ({:.1f})", median, best);
    };
    fmt::print("{:<10} {:>16} {:>16} {:>18} {:>13} {:>16} {:>16}\n", to_string(mode),
               cell(one.median(), one.lowest()), cell(ns[1].median(), ns[1].lowest()),
               cell(many.median(), many.lowest()),
               fmt::format("{:.2f}x ({:.2f}x)", many.median() / one.median(),
                           many.lowest() / one.lowest()),
               fmt::format("{:.2f}M ({:.2f}M)", ops.median() / 1e6, ops.highest() / 1e6),
               fmt::format("{:.0f}k ({:.0f}k)", handoffs.median() / 1e3, handoffs.highest() / 1e3));
}

// The other way to serve 100,000 keys: a table big enough to keep them all bound, so nothing is
// ever evicted (not semaphore mode, which maps a page per slot, nor flock, which would leave
// 100,000 lock files), beside the seed's LockDict, which also keeps every key. Each lock then
// reaches a slot in a 25 MB table: main memory, not cache. Each pair of figures is interleaved.
void bench_all_keys_bound()
{
    constexpr std::size_t kAll = 131072;
    const std::filesystem::path unused;
    auto row = [](std::string_view name, const std::vector<Runs>& ns) {
        fmt::print("{:<10} {:>16} {:>16} {:>18} {:>13}\n", name,
                   fmt::format("{:.1f} ({:.1f})", ns[0].median(), ns[0].lowest()),
                   fmt::format("{:.1f} ({:.1f})", ns[1].median(), ns[1].lowest()),
                   fmt::format("{:.1f} ({:.1f})", ns[2].median(), ns[2].lowest()),
                   fmt::format("{:.2f}x ({:.2f}x)", ns[2].median() / ns[0].median(),
                               ns[2].lowest() / ns[0].lowest()));
    };
    fmt::print("every key bound: tables of capacity {}, and the seed's LockDict (one process)\n",
               kAll);
    {
        LockDict dict1, dict1k, dict100k;
        row("LockDict",
            ns_per_op_interleaved({key_set(dict1, make_keys(1)), key_set(dict1k, make_keys(1000)),
                                   key_set(dict100k, make_keys(100000))}));
    }
    for (LockMode mode : {LockMode::none, LockMode::thread, LockMode::mutex}) {
        LockTable t1 = make_table(mode, unused, kAll), t1k = make_table(mode, unused, kAll),
                  t100k = make_table(mode, unused, kAll);
        row(to_string(mode),
            ns_per_op_interleaved({key_set(t1, make_keys(1)), key_set(t1k, make_keys(1000)),
                                   key_set(t100k, make_keys(100000))}));
    }
    for (std::size_t capacity : {kCapacity, kAll}) {
        const std::size_t bytes = TableGeometry::for_capacity(capacity).region_bytes();
        fmt::print("shared memory: capacity {}: {} bytes, {:.0f} bytes per key{}\n", capacity,
                   bytes, double(bytes) / double(capacity),
                   capacity == kCapacity ? " (+ a semaphore page per slot in semaphore mode)" : "");
    }
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
    auto* word = new (static_cast<char*>(shared.data()) + 2048) OwnerWord{};
    OwnerWordLock owner_word(*word, sem, ::getpid());
    const Runs w = ns_per_raw_op([&] {
        (void)owner_word.try_lock();
        owner_word.unlock();
    });
    fmt::print("raw primitives, ns per lock+unlock, median (best): std::mutex {:.1f} ({:.1f}), "
               "robust pshared mutex {:.1f} ({:.1f}), sem_trywait+sem_post {:.1f} ({:.1f}), "
               "owner word (the semaphore mode's lock) {:.1f} ({:.1f})\n",
               m.median(), m.lowest(), r.median(), r.lowest(), s.median(), s.lowest(), w.median(),
               w.lowest());
}

} // namespace

int main(int argc, char** argv)
{
    if (argc > 1) g_seconds = std::atof(argv[1]);
    std::optional<LockMode> only;
    if (argc > 2) only = parse_lock_mode(argv[2]);
    if (g_seconds <= 0 || g_seconds > 60 || argc > 3 || (argc > 2 && !only)) {
        std::fprintf(stderr, "usage: bench_lock_table [seconds-per-figure, 0 < s <= 60 [mode]]\n");
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
    fmt::print("{:<10} {:>16} {:>16} {:>18} {:>13} {:>16} {:>16}\n", "mode", "ns/op: 1 key",
               "1k keys", "100k keys", "100k/1", "2 procs: ops/s", "hand-offs/s");
    for (LockMode m :
         {LockMode::none, LockMode::thread, LockMode::semaphore, LockMode::mutex, LockMode::flock})
        if (!only || *only == m) bench_mode(m, dir);
    if (!only) bench_all_keys_bound();
    stop = true;
    idle.join();
    std::filesystem::remove_all(dir);
    return 0;
}
