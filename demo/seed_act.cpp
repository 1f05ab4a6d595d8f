#include "seed_act.h"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "demo_server.h"
#include "harness/child.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"
#include "holder.h"
#include "interrupt.h"
#include "os/os_error.h"

namespace forklock::demo {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kSeedKey = "seed";
const std::string kHeldKey = "seed-held";   // held 1 s while...
const std::string kOtherKey = "seed-other"; // ...an increment of this key is timed
const std::string kSeedCrashKey = "seed-crash";
constexpr int kOtherHoldMs = 1'000;
constexpr int kCrashHoldMs = 10'000; // the victim holds the key far longer than the row lasts
constexpr int kCommitsAroundSeedCrash = 3;
constexpr auto kBootDeadline = 30s; // python3 imports gunicorn and the app in every worker
constexpr std::string_view kReady = "Worker ready with pid: "; // gunicorn_conf.py logs it

std::string pythonpath(const SeedSetup& setup)
{
    if (setup.module_dir.empty()) return setup.app_dir.string();
    return setup.module_dir.string() + ":" + setup.app_dir.string();
}

// gunicorn -w N for one row, through /usr/bin/env for PYTHONPATH (the config file imports
// forklock); the master (the same pid after exec) leads the process group the harness stops.
// The app's settings are gunicorn -e flags: `ps` shows each row's lock and data directory.
harness::ServerSpec gunicorn_spec(const SeedSetup& setup, const SeedConfig& config,
                                  const fs::path& data_dir)
{
    harness::ServerSpec spec;
    spec.binary = "/usr/bin/env";
    spec.args = {"PYTHONPATH=" + pythonpath(setup),
                 "PYTHONDONTWRITEBYTECODE=1",
                 setup.python.string(),
                 "-m",
                 "gunicorn",
                 "-w",
                 std::to_string(config.workers),
                 "-c",
                 (setup.app_dir / "gunicorn_conf.py").string(),
                 "-t",
                 "60",
                 "--graceful-timeout",
                 "5",
                 "-e",
                 fmt::format("LOCK={}", app_lock_name(config.lock)),
                 "-e",
                 "DATA_DIR=" + data_dir.string()};
    if (!config.lock_name.empty()) spec.args.insert(spec.args.end(), {"-e", "FORKLOCK_NAME=" + config.lock_name});
    if (config.preload) spec.args.emplace_back("--preload");
    spec.args.emplace_back("app:app");
    spec.data_dir = data_dir;
    spec.data_dir_flag = {}; // gunicorn has no --data-dir: the app reads DATA_DIR
    spec.workers = 0;        // the harness waits for "Listening at:"; wait_for_workers the rest
    spec.start_timeout = kBootDeadline;
    spec.stop_timeout = 8s; // --graceful-timeout 5, then SIGKILL to the group
    spec.dir_prefix = "forklock-demo";
    spec.hooks = demo_server_hooks();
    return spec;
}

// The pids of the workers that have loaded the app, in the order they did.
std::vector<pid_t> ready_pids(const std::string& log)
{
    std::vector<pid_t> pids;
    for (auto at = log.find(kReady); at != std::string::npos; at = log.find(kReady, at + 1)) {
        const char* first = log.data() + at + kReady.size();
        pid_t pid = 0;
        if (std::from_chars(first, log.data() + log.size(), pid).ec == std::errc()) pids.push_back(pid);
    }
    return pids;
}

void wait_for_workers(const harness::ServerProcess& gunicorn, std::size_t count)
{
    const bool ready = harness::wait_until(
        [&] {
            throw_if_interrupted();
            return ready_pids(gunicorn.log()).size() >= count;
        },
        kBootDeadline, 20ms);
    if (!ready)
        throw std::runtime_error(fmt::format("gunicorn did not boot {} workers in {} s:\n{}",
                                             count, kBootDeadline.count(), gunicorn.log_tail()));
}

// How long an increment of kOtherKey waits while another worker holds kHeldKey for 1 s.
double other_key_wait(const ServerApi& api)
{
    std::jthread holder([&api] {
        try {
            (void)api.increment(kHeldKey, kOtherHoldMs, -1, 20s);
        } catch (const std::exception&) { // Ctrl-C: the main thread throws too
        }
    });
    (void)wait_for_owner(api, kHeldKey);
    const IncrementReply reply = api.increment(kOtherKey, 0, -1, 20s);
    if (reply.status != 200)
        throw HttpError(fmt::format("the other key's increment answered {}", reply.status));
    return reply.waited_ms;
}

void measure_race(const SeedSetup& setup, SeedRaceRow& row, const RaceSizes& sizes,
                  Progress& progress, const std::string& label)
{
    const SeedConfig& config = row.config;
    const harness::TempDir data("forklock-demo-seed");
    progress.show(fmt::format("{} starting gunicorn", label));
    harness::ServerProcess gunicorn(gunicorn_spec(setup, config, data.path()));
    wait_for_workers(gunicorn, static_cast<std::size_t>(config.workers));
    const LoadPlan plan{gunicorn.port(), kSeedKey, sizes.requests, sizes.concurrency, sizes.hold_ms};
    row.load = fire_increments(plan, [&](int done) {
        progress.show(fmt::format("{} {}/{} increments", label, done, sizes.requests));
    });
    const ServerApi api(gunicorn.port(), 1s);
    row.final = retry([&] { return api.counter(kSeedKey); }, "GET /counter");
    if (predict_key_scope(config)) {
        progress.show(fmt::format("{} holding one key, timing another", label));
        row.other_key_waited_ms = other_key_wait(api);
    }
    progress.show(fmt::format("{} stopping gunicorn", label));
    gunicorn.stop();
}

SeedRaceRow run_race_row(const SeedSetup& setup, const SeedConfig& config, const RaceSizes& sizes,
                         Progress& progress, const std::string& label)
{
    const auto start = Clock::now();
    SeedRaceRow row;
    row.config = config;
    const std::string error =
        failure_of([&] { measure_race(setup, row, sizes, progress, label); });
    if (error.empty()) {
        const SeedRaceCounts counts{row.load.sent,
                                    row.load.ok,
                                    row.load.errors,
                                    row.final,
                                    static_cast<int>(row.load.pids.size()),
                                    row.load.waited,
                                    row.other_key_waited_ms};
        row.judgement = judge_seed_race(config, counts);
        if (row.load.errors > 0 && !row.load.first_error.empty())
            row.judgement.race.note += ": " + row.load.first_error;
    } else {
        row.judgement.race.note = error;
    }
    row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return row;
}

// Waits for a worker that loaded the app after `before` workers had: the one gunicorn forked to
// replace the killed worker. 0 when none did within 10 s.
pid_t wait_for_replacement(const harness::ServerProcess& gunicorn, std::size_t before)
{
    std::vector<pid_t> pids;
    (void)harness::wait_until(
        [&] {
            throw_if_interrupted();
            pids = ready_pids(gunicorn.log());
            return pids.size() > before;
        },
        10s, 20ms);
    return pids.size() > before ? pids.back() : 0;
}

void crash(const SeedSetup& setup, SeedCrashRow& out, Progress& progress, const std::string& label)
{
    CrashRow& row = out.crash;
    const harness::TempDir data("forklock-demo-seed");
    progress.show(fmt::format("{} starting gunicorn", label));
    harness::ServerProcess gunicorn(gunicorn_spec(setup, out.seed, data.path()));
    wait_for_workers(gunicorn, static_cast<std::size_t>(out.seed.workers));
    const ServerApi api(gunicorn.port(), 1s);
    row.committed = commit(api, kSeedCrashKey, kCommitsAroundSeedCrash);
    std::jthread victim([&api] { // its worker dies: its increment is never committed
        try {
            (void)api.increment(kSeedCrashKey, kCrashHoldMs, -1, 15s);
        } catch (const std::exception&) {
        }
    });
    progress.show(fmt::format("{} waiting for a worker to hold the key", label));
    row.killed_pid = wait_for_owner(api, kSeedCrashKey);
    const std::size_t ready_before = ready_pids(gunicorn.log()).size();
    progress.show(fmt::format("{} kill -9 {}", label, row.killed_pid));
    if (::kill(row.killed_pid, SIGKILL) != 0)
        throw os_error(errno, "kill({}, SIGKILL)", row.killed_pid);
    probe_after_kill(api, kSeedCrashKey, row, Clock::now());
    row.new_pid = wait_for_replacement(gunicorn, ready_before);
    // Restarts: the workers gunicorn forked beyond its first -w (each logs that it is ready).
    const auto workers = static_cast<std::size_t>(out.seed.workers);
    row.restarts_before = static_cast<int>(ready_before - workers);
    row.restarts_after = static_cast<int>(ready_pids(gunicorn.log()).size() - workers);
    if (row.freed) row.committed += commit(api, kSeedCrashKey, kCommitsAroundSeedCrash);
    row.final = retry([&] { return api.counter(kSeedCrashKey); }, "GET /counter");
    progress.show(fmt::format("{} stopping gunicorn", label));
    gunicorn.stop();
}

SeedCrashRow run_crash_row(const SeedSetup& setup, const SeedConfig& config, Progress& progress,
                           const std::string& label)
{
    const auto start = Clock::now();
    SeedCrashRow out{config, {}};
    CrashRow& row = out.crash;
    row.config = as_server_config(config);
    row.note = failure_of([&] { crash(setup, out, progress, label); });
    if (row.note.empty()) {
        const CrashFacts facts{row.freed, row.stuck_503, row.new_pid != 0, row.committed,
                               row.final};
        CrashJudgement judgement = judge_crash(row.config, facts);
        row.observed = judgement.observed;
        row.status = judgement.status;
        row.note = std::move(judgement.note);
    }
    row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return out;
}

std::string label(int row, int rows, const SeedConfig& config, const char* what)
{
    return fmt::format("act {} [{}/{}] {}{}{}:", kSeedAct, row, rows, to_string(config.lock),
                       config.preload ? " --preload" : "", what);
}

} // namespace

SeedSetup default_seed_setup()
{
    SeedSetup setup;
    std::error_code error;
    const fs::path self = fs::read_symlink("/proc/self/exe", error);
    if (!error) setup.module_dir = (self.parent_path() / ".." / "python").lexically_normal();
    setup.app_dir = FORKLOCK_DEMO_APP_DIR; // demo/meson.build: the source's demo/python
    return setup;
}

namespace {

bool module_built(const fs::path& dir)
{
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir / "forklock", error)) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with("_forklock") && name.ends_with(".so")) return true;
    }
    return false;
}

// The interpreter's exit code for: import gunicorn (3 if missing), import forklock (4).
int import_check(const SeedSetup& setup)
{
    std::vector<std::string> args{"/usr/bin/env", "PYTHONPATH=" + pythonpath(setup),
                                  setup.python.string(), "-c",
                                  "import sys\n"
                                  "try:\n    import gunicorn\nexcept ImportError:\n    sys.exit(3)\n"
                                  "try:\n    import forklock\nexcept ImportError:\n    sys.exit(4)\n"};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    harness::Child child([&] {
        const int null_fd = ::open("/dev/null", O_WRONLY);
        ::dup2(null_fd, STDOUT_FILENO);
        ::dup2(null_fd, STDERR_FILENO);
        ::execv(argv[0], argv.data());
        return 127;
    });
    return child.wait(10s);
}

} // namespace

std::string seed_unavailable(const SeedSetup& setup)
{
    if (::access(setup.python.c_str(), X_OK) != 0)
        return fmt::format("no Python at {} (apt-get install python3 gunicorn, or --python PATH)",
                           setup.python.string());
    if (!fs::exists(setup.app_dir / "app.py"))
        return fmt::format("the scene's app is not at {}", (setup.app_dir / "app.py").string());
    if (!setup.module_dir.empty() && !module_built(setup.module_dir))
        return "the forklock Python module is not built (ninja -C build forklock-python)";
    switch (import_check(setup)) {
    case 0: return {};
    case 3:
        return fmt::format("gunicorn is not installed for {} (apt-get install gunicorn)",
                           setup.python.string());
    case 4:
        return fmt::format("forklock does not import in {} (apt-get install pybind11-dev "
                           "python3-pybind11 python3-dev, meson setup --reconfigure build, ninja "
                           "-C build forklock-python)",
                           setup.python.string());
    default: return fmt::format("{} did not run (import gunicorn, forklock)", setup.python.string());
    }
}

std::vector<SeedConfig> seed_race_scenarios(const RaceSizes& sizes)
{
    const int w = sizes.workers;
    return {
        {PyLock::threading, true, w},
        {PyLock::multiprocessing, false, w},
        {PyLock::multiprocessing, true, w},
        {PyLock::forklock, false, w, demo_lock_name("seed")},
    };
}

std::vector<SeedConfig> seed_crash_scenarios()
{
    return {
        {PyLock::multiprocessing, true, 4},
        {PyLock::forklock, false, 4, demo_lock_name("seed-crash")},
    };
}

SeedScene run_seed_act(const SeedSetup& setup, const RaceSizes& sizes, Progress& progress)
{
    SeedScene scene;
    progress.show(fmt::format("act {}: looking for gunicorn and the forklock module", kSeedAct));
    scene.skipped = seed_unavailable(setup);
    if (!scene.skipped.empty()) return scene;
    const auto race = seed_race_scenarios(sizes);
    const auto crashes = seed_crash_scenarios();
    const int rows = static_cast<int>(race.size() + crashes.size());
    int n = 0;
    for (const auto& config : race)
        scene.race.push_back(run_race_row(setup, config, sizes, progress, label(++n, rows, config, "")));
    for (const auto& config : crashes)
        scene.crash.push_back(
            run_crash_row(setup, config, progress, label(++n, rows, config, ", kill -9")));
    return scene;
}

} // namespace forklock::demo
