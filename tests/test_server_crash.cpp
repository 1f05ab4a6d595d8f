// Workers dying: kill -9 while holding a key, hung workers, workers that can't boot, and the
// counter files' crash contract under repeated kills.

#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "harness/http_client.h"
#include "harness/server_process.h"
#include "harness/shm_names.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"

using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

HttpResponse post(const ServerProcess& server, const std::string& target,
                  std::chrono::milliseconds timeout = 10s)
{
    return http_request(server.endpoint(), "POST", target, timeout);
}

HttpResponse get(const ServerProcess& server, const std::string& target)
{
    return http_request(server.endpoint(), "GET", target);
}

// Starts a 5 s increment of `key` on a thread and returns the pid holding the key (from /locks).
int hold_key(ServerProcess& server, const std::string& key, std::jthread& holder)
{
    holder = std::jthread(
        [&server, key] { (void)post(server, "/counter/" + key + "/increment?hold_ms=5000"); });
    int owner = 0;
    (void)wait_until([&] {
        // A short timeout: a poll the holder's worker accepted waits behind the 5 s hold, and
        // would then see the key free. The next poll, on a new connection, goes to a free worker.
        auto locks = http_request(server.endpoint(), "GET", "/locks", 300ms).json();
        if (!locks.is_object()) return false;
        for (const auto& k : locks["keys"])
            if (k["key"] == key && k["owner_pid"].get<int>() != 0)
                owner = k["owner_pid"].get<int>();
        return owner != 0;
    });
    if (owner == 0)
        UNSCOPED_INFO("locks: " << get(server, "/locks").body << "\nlog: " << server.log());
    return owner;
}

// Every process of the server that could have made a lock table: the master (--preload) and
// every worker seen (without it), so a leak check counts this server's semaphore names only.
std::set<pid_t> table_creators(const ServerProcess& server, std::set<pid_t> seen)
{
    seen.insert(server.pid());
    seen.merge(server.worker_pids());
    return seen;
}

void check_recovers_after_kill(const std::vector<std::string>& args)
{
    std::set<pid_t> creators;
    {
        ServerProcess server(args, 2);
        REQUIRE(post(server, "/counter/k/increment").status == 200);
        std::jthread holder;
        int owner = hold_key(server, "k", holder);
        REQUIRE(owner != 0);
        creators = table_creators(server, {owner});
        ::kill(owner, SIGKILL);
        auto started = std::chrono::steady_clock::now();
        auto r = post(server, "/counter/k/increment?timeout_ms=1000");
        auto waited = std::chrono::steady_clock::now() - started;
        holder.join();
        CHECK(r.status == 200);
        CHECK(waited < 1s);
        CHECK(r.json()["value"] ==
              2); // the killed increment never answered 2xx, so it need not count
        // The lock table counts a recovery just after it frees the key: poll for it.
        CHECK(wait_until([&] {
            auto locks = get(server, "/locks").json();
            if (!locks.is_object() || locks["keys"].empty()) return false;
            const auto& key = locks["keys"][0];
            return key["recoveries"] == 1 && key["last_dead_owner"] == owner;
        }));
        CHECK(wait_until([&] {
            auto p = server.worker_pids();
            return p.size() == 2 && !p.count(owner);
        }));
        CHECK(server.wait_for_log(fmt::format("Worker (pid:{}) was sent SIGKILL!", owner)));
        CHECK(get(server, "/workers").json()["restarts"] == 1);
        creators = table_creators(server, creators);
    }
    CHECK(semaphore_names_of(creators) == 0); // a killed holder leaves no name behind
}

} // namespace

TEST_CASE("Server: kill -9 of the worker holding a key: the key is free within 1 s (mutex)",
          "[server][crash]")
{
    check_recovers_after_kill({"-w", "2", "--preload", "--lock-mode", "mutex"});
}

TEST_CASE("Server: kill -9 of the worker holding a key: the master frees it (semaphore)",
          "[server][crash]")
{
    check_recovers_after_kill({"-w", "2", "--preload", "--lock-mode", "semaphore"});
}

TEST_CASE("Server: kill -9 of the worker holding a key: the kernel frees it (flock)",
          "[server][crash]")
{
    // --preload only shares flock's statistics (to find the holder); the lock is the kernel's.
    check_recovers_after_kill({"-w", "2", "--preload", "--lock-mode", "flock"});
}

TEST_CASE("Server: semaphore with --no-lock-recovery keeps a dead worker's key locked",
          "[server][crash]")
{
    ServerProcess server({"-w", "2", "--preload", "--lock-mode", "semaphore", "--no-lock-recovery"},
                         2);
    std::jthread holder;
    int owner = hold_key(server, "k", holder);
    REQUIRE(owner != 0);
    ::kill(owner, SIGKILL);
    holder.join();
    REQUIRE(wait_until(
        [&] { return !server.worker_pids().count(owner) && server.worker_pids().size() == 2; }));
    auto r = post(server, "/counter/k/increment?timeout_ms=300");
    CHECK(r.status == 503);
    CHECK(r.json()["owner_pid"] == owner);
    CHECK(post(server, "/counter/other/increment").status == 200);
}

TEST_CASE("Server: a hung worker is aborted after --timeout and replaced", "[server][crash]")
{
    ServerProcess server({"-w", "1", "-t", "1"}, 1);
    int old = *server.worker_pids().begin();
    std::jthread stuck([&] { (void)post(server, "/counter/k/increment?hold_ms=20000"); });
    CHECK(server.wait_for_log(fmt::format("WORKER TIMEOUT (pid:{})", old), 5s));
    // As gunicorn: SIGABRT first, which the worker answers by exiting with code 1 (no core dump).
    CHECK(server.wait_for_log(fmt::format("Worker (pid:{}) exited with code 1", old), 5s));
    CHECK(wait_until([&] {
        auto p = server.worker_pids();
        return p.size() == 1 && !p.count(old);
    }));
    CHECK(get(server, "/healthz").status == 200);
    stuck.join();
}

TEST_CASE("Server: a worker that can't boot stops the master (no respawn loop)", "[server][crash]")
{
    const TempDir dir("noboot");
    std::filesystem::permissions(dir.path(), std::filesystem::perms::none);
    // root ignores permissions: /proc/1 is a directory nobody can create files in.
    ServerSpec spec;
    spec.args = {"-w", "2"};
    spec.data_dir = ::geteuid() == 0 ? std::filesystem::path("/proc/1") : dir.path();
    spec.workers = 0; // it listens, then stops: wait for nothing more
    ServerProcess server(std::move(spec));
    CHECK(server.wait_exit(10s) == 3);
    CHECK(server.log().find("Worker failed to boot") != std::string::npos);
    CHECK(server.count_in_log("Booting worker") <= 2);
    std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all);
}

TEST_CASE("Server: workers SIGKILLed at random under load never lose a 2xx increment",
          "[server][crash]")
{
    std::atomic<int> ok{0};
    int kills = 0;
    {
        ServerProcess server({"-w", "3", "--preload"}, 3);
        std::atomic<bool> done{false};
        std::vector<std::thread> clients;
        for (int c = 0; c < 4; ++c)
            clients.emplace_back([&] {
                while (!done) ok += post(server, "/counter/c/increment").status == 200;
            });
        std::mt19937 rng(42);
        for (; kills < 8; ++kills) {
            std::this_thread::sleep_for(std::chrono::milliseconds(40 + rng() % 80));
            auto pids = server.worker_pids();
            if (pids.empty()) continue;
            ::kill(*std::next(pids.begin(), static_cast<long>(rng() % pids.size())), SIGKILL);
        }
        done = true;
        for (auto& t : clients) t.join();
        auto value = get(server, "/counter/c");
        REQUIRE(value.status == 200);
        auto v = value.json()["value"].get<int>();
        CHECK(v >= ok);
        CHECK(v <= ok + kills); // at most the requests in flight at each kill committed unanswered
    }
}
