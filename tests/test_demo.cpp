// The classroom demo end to end: forklock-demo --quick drives the real server binary through
// its acts; every verdict must be the one the theory predicts, and nothing may be left
// running.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/child.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"

using forklock::harness::wait_until;

namespace {

namespace fs = std::filesystem;

std::string env_or_fail(const char* name)
{
    const char* value = std::getenv(name);
    if (value == nullptr) FAIL(name << " is not set (run through meson test)");
    return value;
}

// A private TMPDIR for one demo run: its servers' directories land there (Act 3's PostgreSQL's
// too), so the test can see whether any of them (or their processes) outlive the demo.
struct ScratchDir {
    ScratchDir()
    {
        // Searchable by others: under root the PostgreSQL runs as `nobody`, in a directory in here.
        fs::permissions(dir.path(), fs::perms::others_exec | fs::perms::group_exec,
                        fs::perm_options::add);
    }
    forklock::harness::TempDir dir{"test_demo"};
    [[nodiscard]] const fs::path& path() const { return dir.path(); }
};

struct Demo {
    forklock::harness::Child process; // killed and reaped if the test ends before it does
    int stdout_fd = -1;
};

Demo start_demo(const std::vector<std::string>& args, const fs::path& tmpdir)
{
    int out[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    std::vector<std::string> argv_text{env_or_fail("FORKLOCK_DEMO_BIN"), "--server",
                                       env_or_fail("FORKLOCK_BIN")};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : argv_text) argv.push_back(arg.data());
    argv.push_back(nullptr);
    forklock::harness::Child process([&] {
        ::setenv("TMPDIR", tmpdir.c_str(), 1);
        ::dup2(out[1], STDOUT_FILENO);
        ::execv(argv[0], argv.data());
        return 127;
    });
    ::close(out[1]);
    return {std::move(process), out[0]};
}

// Reads the demo's stdout to EOF, bounded by `timeout`.
std::string read_all(int fd, std::chrono::seconds timeout)
{
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd entry{fd, POLLIN, 0};
        if (::poll(&entry, 1, 200) <= 0) continue;
        const ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got <= 0) break;
        text.append(buffer, static_cast<std::size_t>(got));
    }
    ::close(fd);
    return text;
}

// Processes whose command line mentions `needle` (the scratch TMPDIR: only our servers).
int processes_mentioning(const std::string& needle)
{
    int count = 0;
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        try { // a process may exit while we read it: reading its cmdline then fails (ESRCH)
            std::ifstream in(entry.path() / "cmdline", std::ios::binary);
            const std::string cmdline((std::istreambuf_iterator<char>(in)), {});
            if (cmdline.find(needle) != std::string::npos) ++count;
        } catch (const std::ios_base::failure&) {
        }
    }
    return count;
}

bool file_named(const fs::path& dir, const std::string& name)
{
    std::error_code error; // the demo removes directories while we look
    for (fs::recursive_directory_iterator it(dir, error), end; !error && it != end;
         it.increment(error)) {
        if (it->path().filename() == name) return true;
    }
    return false;
}

bool empty_dir(const fs::path& dir) { return fs::is_empty(dir); }

// mode, preload, named (--lock-name), workers, threads
using RowKey = std::tuple<std::string, bool, bool, int, int>;

// The truth table, written out independently of demo/theory.cpp.
const std::map<RowKey, std::string> kExpectedRace{
    {{"none", false, false, 4, 1}, "loses updates"},
    {{"thread", true, false, 4, 1}, "loses updates"},
    {{"thread", false, false, 1, 4}, "safe"},
    {{"semaphore", false, false, 4, 1}, "loses updates"},
    {{"semaphore", true, false, 4, 1}, "safe"},
    {{"mutex", false, false, 4, 1}, "loses updates"},
    {{"mutex", true, false, 4, 1}, "safe"},
    {{"semaphore", false, true, 4, 1}, "safe"}, // the name is the meeting point
    {{"mutex", false, true, 4, 1}, "safe"},
    {{"flock", false, false, 4, 1}, "safe"},
};

// Act 3, two servers: (mode, preload, named and shared) -> verdict.
const std::map<std::tuple<std::string, bool, bool>, std::string> kExpectedTwoServers{
    {{"mutex", true, false}, "loses updates"}, // each master has its own table
    {{"flock", false, false}, "safe"},         // one kernel
    {{"mutex", false, true}, "safe"},          // one machine, one name
    {{"postgres", false, false}, "safe"},      // one database server, wherever the servers run
};

RowKey key_of(const nlohmann::json& row)
{
    return {row["mode"], row["preload"], !row["lock_name"].get<std::string>().empty(),
            row["workers"], row["threads"]};
}

void check_two_servers_row(const nlohmann::json& row)
{
    INFO(row.dump());
    const auto key = std::tuple{row["mode"].get<std::string>(), row["preload"].get<bool>(),
                                row["lock_share"].get<bool>()};
    REQUIRE(kExpectedTwoServers.count(key) == 1);
    CHECK(row["verdict"] == kExpectedTwoServers.at(key));
    CHECK(row["as_predicted"] == true);
    CHECK(row["errors"] == 0);
    CHECK(row["committed_by_a"].get<int>() > 0);
    CHECK(row["committed_by_b"].get<int>() > 0);
    if (kExpectedTwoServers.at(key) == "safe")
        CHECK(row["lost"] == 0);
    else
        CHECK(row["lost"].get<long>() > 0);
}

// Named tables the servers of the demo `demo_pid` made (forklock-demo-PID-...): none may outlive
// it. Only its own: another demo, of a test run beside this one, may be running.
int demo_shm_names(pid_t demo_pid)
{
    const std::string mark = fmt::format("forklock-demo-{}-", demo_pid);
    int n = 0;
    for (const auto& entry : fs::directory_iterator("/dev/shm")) {
        const std::string name = entry.path().filename().string();
        n += name.find(mark) != std::string::npos ? 1 : 0;
    }
    return n;
}

void check_race_row(const nlohmann::json& row)
{
    const RowKey key = key_of(row);
    INFO(row.dump());
    REQUIRE(kExpectedRace.count(key) == 1);
    CHECK(row["verdict"] == kExpectedRace.at(key));
    CHECK(row["as_predicted"] == true);
    CHECK(row["errors"] == 0);
    if (kExpectedRace.at(key) == "safe")
        CHECK(row["lost"] == 0);
    else
        CHECK(row["lost"].get<long>() > 0);
    if (row["workers"].get<int>() > 1) CHECK(row["worker_pids"].size() >= 2);
}

// Act 3's paused holder: every increment sent during the pause was refused (503 naming it),
// the holder finished after SIGCONT, the key was free again, and nothing was lost.
void check_pause_row(const nlohmann::json& row)
{
    INFO(row.dump());
    CHECK(row["mode"] == "postgres");
    CHECK(row["verdict"] == "held while paused");
    CHECK(row["as_predicted"] == true);
    CHECK(row["paused_holding"] == true);
    CHECK(row["probes"].get<int>() > 0);
    CHECK(row["refused"] == row["probes"]);
    CHECK(row["admitted"] == 0);
    CHECK(row["refused_past_hold"].get<int>() > 0); // refused when only the pause held the key
    CHECK(row["paused_ms"].get<double>() >=
          row["probes"].get<int>() * row["probe_timeout_ms"].get<int>());
    CHECK(row["holder_finished"] == true);
    CHECK(row["freed_after"] == true);
    CHECK(row["final"] == row["committed"]);
}

// The seed's scene under the real gunicorn: (lock, preload) -> verdict, and for the locks that
// exclude, whether another key waits; written out independently of demo/seed_theory.cpp.
const std::map<std::tuple<std::string, bool>, std::tuple<std::string, std::string>> kExpectedSeed{
    {{"threading.Lock", true}, {"loses updates", ""}},
    {{"multiprocessing.Lock", false}, {"loses updates", ""}},
    {{"multiprocessing.Lock", true}, {"safe", "one lock for all keys"}},
    {{"forklock.LockDict", false}, {"safe", "per key"}},
};

void check_seed_race_row(const nlohmann::json& row)
{
    INFO(row.dump());
    const auto key = std::tuple{row["lock"].get<std::string>(), row["preload"].get<bool>()};
    REQUIRE(kExpectedSeed.count(key) == 1);
    const auto& [verdict, scope] = kExpectedSeed.at(key);
    CHECK(row["verdict"] == verdict);
    CHECK(row["scope"] == scope);
    CHECK(row["as_predicted"] == true);
    CHECK(row["errors"] == 0);
    CHECK(row["worker_pids"].size() >= 2); // more than one gunicorn worker served
    if (verdict == "safe")
        CHECK(row["lost"] == 0);
    else
        CHECK(row["lost"].get<long>() > 0);
    if (scope == "one lock for all keys") CHECK(row["other_key_waited_ms"].get<double>() >= 100.0);
    if (scope == "per key") CHECK(row["other_key_waited_ms"].get<double>() < 100.0);
}

void check_crash_row(const nlohmann::json& row)
{
    INFO(row.dump());
    const bool stuck = !row["lock_recovery"].get<bool>();
    CHECK(row["verdict"] == (stuck ? "stays locked" : "recovers"));
    CHECK(row["as_predicted"] == true);
    CHECK(row["new_pid"].get<int>() > 0);
    CHECK(row["new_pid"] != row["killed_pid"]);
    CHECK(row["restarts_after"].get<int>() > row["restarts_before"].get<int>());
    CHECK(row["final"] == row["committed"]);
    if (stuck) CHECK(row["stuck_503"] == true);
    if (stuck) CHECK(row["stuck_owner_pid"] == row["killed_pid"]); // the dead worker still owns it
    if (!stuck) CHECK(row["freed_after_ms"].get<double>() < 1000.0);
}

// Act 5's lease rows: a late write that lands (one lost, two holders in the trace) without
// fencing, one refused with 409 and an older token with it; the pause outlasted the lease.
void check_lease_row(const nlohmann::json& row)
{
    INFO(row.dump());
    CHECK(row["as_predicted"] == true);
    CHECK(row["lease_ms"] == 200);
    CHECK(row["paused_ms"].get<double>() >= 500.0);
    CHECK(row["taker"]["status"] == 200);
    CHECK(row["taker"]["pid"] != row["paused_pid"]);
    if (row["fencing"] == true) {
        CHECK(row["late_write"]["status"] == 409);
        CHECK(row["late_write"]["token"] < row["taker"]["token"]);
        CHECK(row["lost"] == 0);
        CHECK(row["final"] == row["committed"]);
    } else {
        CHECK(row["late_write"]["written"] == true);
        CHECK(row["value_after_late"] == row["taker"]["value"]);
        CHECK(row["lost"] == 1);
        CHECK(row["overlaps"].get<long>() >= 1);
    }
}

// Whether the redis rows must run: a server built with hiredis, and redis-server installed.
bool redis_rows_expected()
{
    const char* hiredis = std::getenv("FORKLOCK_HIREDIS");
    return hiredis != nullptr && std::string_view(hiredis) == "1" &&
           ::access("/usr/bin/redis-server", X_OK) == 0;
}

void check_leases(const nlohmann::json& leases)
{
    CHECK(leases["ran"] == true);
    CHECK(leases["postgres_from_act3"] == true); // Act 3's paused holder, checked above
    std::vector<std::pair<std::string, bool>> expected;
    if (redis_rows_expected()) {
        CHECK(leases["redis_skipped"] == "");
        expected = {{"redis", false}, {"redis", true}};
    } else {
        CHECK(leases["redis_skipped"].get<std::string>().find("redis") != std::string::npos);
    }
    expected.insert(expected.end(), {{"semaphore", false}, {"semaphore", true}});
    REQUIRE(leases["rows"].size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        CHECK(leases["rows"][i]["mode"] == expected[i].first);
        CHECK(leases["rows"][i]["fencing"] == expected[i].second);
        check_lease_row(leases["rows"][i]);
    }
}

} // namespace

// Whether this build made the Python module (meson sets FORKLOCK_PYTHON_MODULE).
bool python_module_built()
{
    const char* built = std::getenv("FORKLOCK_PYTHON_MODULE");
    return built != nullptr && std::string_view(built) == "1";
}

TEST_CASE("forklock-demo --quick: every verdict as predicted, exit 0, nothing left behind",
          "[demo]")
{
    const ScratchDir scratch;
    Demo demo = start_demo({"--quick", "--json"}, scratch.path());
    const pid_t demo_pid = demo.process.pid();
    const std::string out = read_all(demo.stdout_fd, std::chrono::seconds(90));
    const int rc = demo.process.wait(std::chrono::seconds(10));
    INFO(out);
    const auto report = nlohmann::json::parse(out, nullptr, false);
    REQUIRE_FALSE(report.is_discarded());
    REQUIRE(report["race"].size() == kExpectedRace.size());
    for (const auto& row : report["race"]) check_race_row(row);
    REQUIRE(report["crash"].size() == 4);
    for (const auto& row : report["crash"]) check_crash_row(row);
    REQUIRE(report["two_servers"].size() == kExpectedTwoServers.size());
    for (const auto& row : report["two_servers"]) check_two_servers_row(row);
    // The suite has PostgreSQL (README's test command installs it): its rows must have run.
    CHECK(report["postgres_skipped"] == "");
    REQUIRE(report["postgres_crash"].size() == 1);
    CHECK(report["postgres_crash"][0]["mode"] == "postgres");
    check_crash_row(report["postgres_crash"][0]);
    REQUIRE(report["postgres_pause"].size() == 1);
    check_pause_row(report["postgres_pause"][0]);
    // A build with the module has gunicorn too (the python suite needs both): the scene must
    // run. A build without it (the sanitizer build) must say why it skipped.
    const auto& seed = report["seed"];
    if (!python_module_built()) {
        CHECK(seed["skipped"].get<std::string>().find("module") != std::string::npos);
        CHECK(seed["race"].empty());
    } else {
        CHECK(seed["skipped"] == "");
        REQUIRE(seed["race"].size() == kExpectedSeed.size());
        for (const auto& row : seed["race"]) check_seed_race_row(row);
        REQUIRE(seed["crash"].size() == 2);
        CHECK(seed["crash"][0]["lock"] == "multiprocessing.Lock");
        CHECK(seed["crash"][1]["lock"] == "forklock.LockDict");
        for (const auto& row : seed["crash"]) check_crash_row(row);
    }
    check_leases(report["leases"]);
    CHECK(demo_shm_names(demo_pid) == 0);
    CHECK(report["all_as_predicted"] == true);
    CHECK(rc == 0);
    CHECK(processes_mentioning(scratch.path().string()) == 0);
    CHECK(empty_dir(scratch.path()));
}

// Ctrl-C once the demo's counter file `key` exists: in act 1 while 8 clients are mid-load, in
// act 2 while a worker is about to hold (or holds) the crash key for 10 s, in act 3 while a
// worker is about to be (or is) stopped holding the pause key, with a PostgreSQL running.
void interrupt_when_counter_exists(const std::vector<std::string>& args, const std::string& key)
{
    const ScratchDir scratch;
    const std::string needle = scratch.path().string();
    Demo demo = start_demo(args, scratch.path());
    REQUIRE(wait_until([&] { return file_named(scratch.path(), key); }, std::chrono::seconds(20)));
    CHECK(processes_mentioning(needle) >= 2);
    ::kill(demo.process.pid(), SIGINT);
    (void)read_all(demo.stdout_fd, std::chrono::seconds(20));
    CHECK(demo.process.wait(std::chrono::seconds(20)) == 130);
    CHECK(wait_until([&] { return processes_mentioning(needle) == 0; }, std::chrono::seconds(5)));
    CHECK(empty_dir(scratch.path()));
}

TEST_CASE("forklock-demo: Ctrl-C stops every server it started and removes their directories",
          "[demo]")
{
    SECTION("during the race")
    {
        interrupt_when_counter_exists({"--quick", "--act", "1", "--requests", "5000"}, "race");
    }
    SECTION("during the crash")
    {
        interrupt_when_counter_exists({"--quick", "--act", "2"}, "crash");
    }
    SECTION("during Act 3's paused PostgreSQL holder (its cluster is stopped too)")
    {
        interrupt_when_counter_exists({"--quick", "--act", "3"}, "pause");
    }
    SECTION("during Act 5's lease rows (a stopped holder, and redis-server, are stopped too)")
    {
        interrupt_when_counter_exists({"--quick", "--act", "5"}, "lease");
    }
    SECTION("during the seed's scene: every gunicorn, its whole process group")
    {
        if (!python_module_built()) return; // no scene to interrupt in this build
        interrupt_when_counter_exists({"--quick", "--act", "seed", "--requests", "5000"}, "seed");
    }
}

TEST_CASE("forklock-demo: bad usage exits 2 before starting anything", "[demo]")
{
    const ScratchDir scratch;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--workers", "1"}, {"--act", "9"}, {"--no-such-flag"}, {"--hold-ms", "0"}}) {
        Demo demo = start_demo(args, scratch.path());
        (void)read_all(demo.stdout_fd, std::chrono::seconds(10));
        CHECK(demo.process.wait(std::chrono::seconds(10)) == 2);
    }
    CHECK(empty_dir(scratch.path()));
}

TEST_CASE("forklock-demo: without Python the seed's scene is one line saying why, and nothing runs",
          "[demo]")
{
    const ScratchDir scratch;
    Demo demo = start_demo({"--quick", "--act", "seed", "--no-color", "--python", "/nowhere/python3"},
                           scratch.path());
    const std::string out = read_all(demo.stdout_fd, std::chrono::seconds(20));
    INFO(out);
    CHECK(out.find(": skipped: no Python at /nowhere/python3") != std::string::npos);
    CHECK(out.find(", the seed: Python under gunicorn: skipped:") < out.find('\n'));
    CHECK(std::count(out.begin(), out.end(), '\n') == 3); // the skip line, a blank, the summary
    CHECK(out.find("0 of 0 rows") != std::string::npos);
    CHECK(demo.process.wait(std::chrono::seconds(10)) == 1); // no row ran: nothing was shown
    CHECK(empty_dir(scratch.path()));
}
