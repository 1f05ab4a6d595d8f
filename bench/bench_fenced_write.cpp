// bench_fenced_write: what fencing adds to one increment in the counter store, in ns: update()
// (read, write) against update_fenced() (the stripe's generation, read, then the store's lock of
// the key, the token check and the write; no second read while the generation stands), one hot
// key on one thread, in a temporary directory. Median of 7 runs of
// n increments each, the two taking turns.
//
//   build/bench/bench_fenced_write [increments]

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "app/counter_store.h"
#include "harness/temp_dir.h"
#include "os/monotonic_clock.h"

using namespace forklock;

namespace {

template <typename F>
double run_ns(std::uint64_t n, F&& f)
{
    const std::int64_t t0 = monotonic_ns();
    for (std::uint64_t i = 0; i < n; ++i) f(i);
    return static_cast<double>(monotonic_ns() - t0) / static_cast<double>(n);
}

double median(std::array<double, 7> v)
{
    std::sort(v.begin(), v.end());
    return v[3];
}

} // namespace

int main(int argc, char** argv)
{
    const std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200'000;
    harness::TempDir dir;
    CounterStore store(dir.path());
    auto plus_one = [](std::uint64_t v) { return v + 1; };
    std::array<double, 7> plain{}, fenced{};
    for (std::size_t r = 0; r < plain.size(); ++r) {
        plain[r] = run_ns(n, [&](std::uint64_t) { (void)store.update("plain", plus_one); });
        fenced[r] = run_ns(n, [&](std::uint64_t i) {
            (void)store.update_fenced("fenced", i + 1 + r * n, plus_one);
        });
    }
    std::printf("update: %.0f ns  update_fenced: %.0f ns  fencing adds %.0f ns per increment\n",
                median(plain), median(fenced), median(fenced) - median(plain));
}
