// bench_lock_table: what one lock-table operation costs, per mode, side by side in one run.
//
//   build/bench/bench_lock_table [seconds-per-figure]
//
// Figures: uncontended lock+unlock of one key through the table (ns/op, with a second thread
// alive so glibc takes its multi-threaded path); two forked processes hammering one key (ops/s
// summed); and lock+unlock cycling over 1, 1,000 and 100,000 distinct keys (ns/op; capacity 1024,
// so 100,000 keys means every operation evicts an idle key and binds a new one).

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

#include "lock_table.h"
#include "memory_region.h"
#include "named_semaphore.h"
#include "pthread_mutex.h"

using namespace forklock;
using Clock = std::chrono::steady_clock;

namespace {

double g_seconds = 0.5;

LockTable make_table(LockMode mode, const std::filesystem::path& dir)
{
    LockTableOptions o;
    o.mode = mode;
    o.capacity = 1024;
    o.lock_dir = dir;
    return LockTable(o);
}

std::vector<std::string> make_keys(std::size_t n)
{
    std::vector<std::string> keys;
    keys.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        keys.push_back(fmt::format("user:{:08}", i));
    return keys;
}

constexpr int kRepeats = 5;

// The median of kRepeats runs of f(seconds), after one warm-up run: this VM shares its cores, and
// one run that lost the CPU for a while should not decide a figure.
template <typename F>
double median_of_runs(F&& f)
{
    std::vector<double> runs;
    (void)f(g_seconds / kRepeats); // warm-up, not counted: a fresh table's first touches fault pages in
    for (int i = 0; i < kRepeats; ++i)
        runs.push_back(f(g_seconds / kRepeats));
    std::sort(runs.begin(), runs.end());
    return runs[kRepeats / 2];
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
            if (++i == keys.size())
                i = 0;
        }
        ops += 1000;
    } while (Clock::now() < stop);
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / double(ops);
}

double ns_per_op(LockTable& table, const std::vector<std::string>& keys)
{
    return median_of_runs([&](double seconds) { return ns_per_op_once(table, keys, seconds); });
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
    for (pid_t k : kids)
        ::waitpid(k, nullptr, 0);
    return double(counts[0] + counts[1]) / seconds;
}

double contended_ops_per_sec(LockTable& table)
{
    return median_of_runs([&](double seconds) { return contended_ops_per_sec_once(table, seconds); });
}

void bench_mode(LockMode mode, const std::filesystem::path& dir)
{
    LockTable table = make_table(mode, dir);
    const double one = ns_per_op(table, make_keys(1));
    const double thousand = ns_per_op(table, make_keys(1000));
    const double many = ns_per_op(table, make_keys(100000));
    const double contended = contended_ops_per_sec(table);
    fmt::print("{:<10} {:>12.1f} {:>16.0f} {:>10.1f} {:>10.1f} {:>10.1f} {:>8.2f}x\n", to_string(mode),
               one, contended, one, thousand, many, many / one);
}

// The bare primitives under the table, lock + unlock with nothing around them, so the table's
// own cost can be read off on this machine (it is a few times slower than the one in
// ../shared/research/locks.md).
template <typename Op>
double ns_per_raw_op(Op&& op)
{
    return median_of_runs([&](double seconds) {
        const auto start = Clock::now();
        const auto stop = start + std::chrono::duration<double>(seconds);
        std::size_t ops = 0;
        do {
            for (int i = 0; i < 1000; ++i)
                op();
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
    NamedSemaphore sem = NamedSemaphore::create_unlinked(fmt::format("/forklock.{}.bench", ::getpid()), 1);
    const double m = ns_per_raw_op([&] { lock_mutex(&plain); unlock_mutex(&plain); });
    const double r = ns_per_raw_op([&] { lock_mutex(robust); unlock_mutex(robust); });
    const double s = ns_per_raw_op([&] { (void)sem.try_wait(); sem.post(); });
    fmt::print("raw primitives (ns per lock+unlock): std::mutex {:.1f}, robust pshared mutex {:.1f}, "
               "sem_trywait+sem_post {:.1f}\n", m, r, s);
}

} // namespace

int main(int argc, char** argv)
{
    if (argc > 1)
        g_seconds = std::atof(argv[1]);
    if (g_seconds <= 0 || g_seconds > 60) {
        std::fprintf(stderr, "usage: bench_lock_table [seconds-per-figure, 0 < s <= 60]\n");
        return 2;
    }
    char tmpl[] = "/tmp/forklock-bench-XXXXXX";
    const std::filesystem::path dir = ::mkdtemp(tmpl);
    std::atomic<bool> stop{false};
    std::thread idle([&] {
        while (!stop)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    });
    fmt::print("{} cores, {:.2f} s per figure (median of {} runs); capacity 1024 slots\n",
               std::thread::hardware_concurrency(), g_seconds, kRepeats);
    bench_raw_primitives();
    fmt::print("{:<10} {:>12} {:>16} {:>10} {:>10} {:>10} {:>9}\n", "mode", "uncont ns/op",
               "2-proc ops/s", "1 key", "1k keys", "100k keys", "100k/1");
    for (LockMode m : {LockMode::none, LockMode::thread, LockMode::semaphore, LockMode::mutex,
                       LockMode::flock})
        bench_mode(m, dir);
    stop = true;
    idle.join();
    std::filesystem::remove_all(dir);
    return 0;
}
