// Named lock tables (LockTableOptions::name): processes that never inherited each other's memory
// meet by the name; who creates, who unlinks, stale names, a second live user.

#include <catch2/catch.hpp>

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "harness/child.h"
#include "harness/shm_names.h"
#include "harness/wait.h"
#include <forklock/lock_table.h>
#include "os/memory_region.h"

using namespace forklock;
using namespace forklock::harness;

namespace {

struct Shared {
    std::atomic<int> counter; // a plain read-modify-write (load, then store) under the lock
    std::atomic<int> inside;
    std::atomic<int> max_inside;
    std::atomic<int> ready;
};

class SharedBlock {
public:
    SharedBlock() : region_(sizeof(Shared), MemoryRegion::Sharing::shared) {}
    Shared* operator->() const { return static_cast<Shared*>(region_.data()); }
    Shared& operator*() const { return *operator->(); }

private:
    MemoryRegion region_;
};

// A name no other test (or checkout) uses at the same time.
std::string unique_name(const char* what)
{
    static int n = 0;
    return fmt::format("test-{}-{}-{}", ::getpid(), what, n++);
}

LockTableOptions named(LockMode mode, const std::string& name, bool share = false,
                       std::size_t capacity = 64)
{
    LockTableOptions o;
    o.mode = mode;
    o.capacity = capacity;
    o.name = name;
    o.share = share;
    return o;
}

int increment_many(LockTable& table, Shared& sh, int n)
{
    for (int i = 0; i < n; ++i) {
        KeyGuard g = table.lock("counter");
        const int now = sh.inside.fetch_add(1) + 1;
        int max = sh.max_inside.load();
        while (now > max && !sh.max_inside.compare_exchange_weak(max, now)) {}
        const int v = sh.counter.load(std::memory_order_relaxed);
        if (i % 64 == 0) std::this_thread::yield(); // widen the window now and then
        sh.counter.store(v + 1, std::memory_order_relaxed);
        sh.inside.fetch_sub(1);
    }
    return 0;
}

} // namespace

TEST_CASE("Named table: tables opened by name after fork exclude each other", "[named_table]")
{
    const LockMode mode = GENERATE(LockMode::semaphore, LockMode::mutex);
    INFO("mode " << to_string(mode));
    const std::string name = unique_name("exclude");
    SharedBlock sh;
    std::vector<Child> kids;
    for (int p = 0; p < 3; ++p)
        kids.emplace_back([&] {
            LockTable own(named(mode, name, true));
            return increment_many(own, *sh, 3000);
        });
    for (Child& k : kids) REQUIRE(k.wait() == 0);
    CHECK(sh->counter.load() == 9000);
    CHECK(sh->max_inside.load() == 1);
    CHECK(named_table_entries(name) == 0); // the last child to leave removed every name
}

TEST_CASE("Named table: processes opening and closing one name at once always share one table",
          "[named_table]")
{
    // Creators, joiners and last users race: at every instant the live users must be in one
    // table (max_inside 1), and nobody alive may be taken for stale (rebuilt 0).
    const LockMode mode = GENERATE(LockMode::semaphore, LockMode::mutex);
    INFO("mode " << to_string(mode));
    const std::string name = unique_name("churn");
    SharedBlock sh;
    static_assert(sizeof(Shared) >= 4 * sizeof(int));
    std::atomic<int>& rebuilt = sh->ready; // reused: how many opens found a stale name
    std::vector<Child> kids;
    for (int p = 0; p < 4; ++p)
        kids.emplace_back([&] {
            for (int round = 0; round < 100; ++round) {
                LockTable own(named(mode, name, true, 8));
                if (own.origin() == TableOrigin::rebuilt) rebuilt.fetch_add(1);
                increment_many(own, *sh, 5);
            }
            return 0;
        });
    for (Child& k : kids) REQUIRE(k.wait() == 0);
    CHECK(sh->counter.load() == 4 * 100 * 5);
    CHECK(sh->max_inside.load() == 1);
    CHECK(rebuilt.load() == 0);
    CHECK(named_table_entries(name) == 0);
}

TEST_CASE("Named table: a second live user is refused unless it asks to share", "[named_table]")
{
    const LockMode mode = GENERATE(LockMode::semaphore, LockMode::mutex);
    INFO("mode " << to_string(mode));
    const std::string name = unique_name("second");
    LockTable first(named(mode, name));
    CHECK(first.origin() == TableOrigin::created);
    KeyGuard held = first.lock("k");
    CHECK_THROWS_AS(LockTable(named(mode, name)), LockNameError);
    CHECK_THROWS_WITH(LockTable(named(mode, name)), Catch::Contains("--lock-share"));
    // Sharing on purpose works only with the same mode and capacity.
    const LockMode other = mode == LockMode::mutex ? LockMode::semaphore : LockMode::mutex;
    CHECK_THROWS_AS(LockTable(named(other, name, true)), LockNameError);
    CHECK_THROWS_AS(LockTable(named(mode, name, true, 128)), LockNameError);
    LockTable second(named(mode, name, true));
    CHECK(second.origin() == TableOrigin::joined);
    CHECK(second.owner("k") == ::getpid());
    CHECK_FALSE(second.try_lock("k"));
    held.unlock();
    CHECK(second.try_lock("k"));
}

TEST_CASE("Named table: a stale name left by a creator killed -9 is rebuilt, not trusted",
          "[named_table]")
{
    const LockMode mode = GENERATE(LockMode::semaphore, LockMode::mutex);
    INFO("mode " << to_string(mode));
    const std::string name = unique_name("stale");
    SharedBlock sh;
    Child creator([&]() -> int {
        LockTable table(named(mode, name));
        KeyGuard g = table.lock("k");
        sh->ready = 1;
        for (;;) ::pause();
    });
    REQUIRE(wait_until([&] { return sh->ready.load() == 1; }));
    ::kill(creator.pid(), SIGKILL);
    REQUIRE(creator.wait() == 128 + SIGKILL);
    REQUIRE(named_table_entries(name) > 0); // kill -9 ran no destructor
    {
        LockTable table(named(mode, name)); // not refused: nobody alive uses the name
        CHECK(table.origin() == TableOrigin::rebuilt);
        CHECK(table.owner("k") == 0); // a fresh table: the dead holder's slot was not read
        CHECK(table.try_lock("k"));
    }
    CHECK(named_table_entries(name) == 0);
}

TEST_CASE("Named table: a server in another pid namespace is refused, even sharing on purpose",
          "[named_table][fork]")
{
    // Lock words hold pids: there a live holder's pid would look gone, or name another process.
    const std::string name = unique_name("pidns");
    LockTable first(named(LockMode::mutex, name, true));
    enum : int { refused = 0, joined = 1, other_error = 2, not_permitted = 3 };
    Child outside([&] {
        if (::unshare(CLONE_NEWPID) != 0) return int{not_permitted}; // needs root (CI is)
        // The first child forked after unshare is pid 1 of the new namespace. (Not a Child: in
        // there, its parent's pid reads as 0.)
        const pid_t inside = ::fork();
        if (inside < 0) return int{other_error};
        if (inside == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            int code = other_error;
            try {
                LockTable second(named(LockMode::mutex, name, true));
                code = joined;
            } catch (const LockNameError& e) {
                if (std::string_view(e.what()).find("pid namespace") != std::string_view::npos)
                    code = refused;
            } catch (...) {
            }
            ::_exit(code);
        }
        int status = 0;
        while (::waitpid(inside, &status, 0) < 0 && errno == EINTR) {}
        return WIFEXITED(status) ? WEXITSTATUS(status) : int{other_error};
    });
    const int result = outside.wait();
    if (result == not_permitted) {
        WARN("unshare(CLONE_NEWPID) is not permitted here (not root): not checked");
        return;
    }
    CHECK(result == refused);
    LockTable same_namespace(named(LockMode::mutex, name, true)); // the check itself lets this in
    CHECK(same_namespace.origin() == TableOrigin::joined);
}

TEST_CASE("Named table: only the last user unlinks the names", "[named_table]")
{
    const LockMode mode = GENERATE(LockMode::semaphore, LockMode::mutex);
    INFO("mode " << to_string(mode));
    const std::string name = unique_name("last");
    auto first = std::make_unique<LockTable>(named(mode, name));
    auto second = std::make_unique<LockTable>(named(mode, name, true));
    REQUIRE(named_table_entries(name) == (mode == LockMode::semaphore ? 65 : 1));
    first.reset();
    CHECK(named_table_entries(name) == (mode == LockMode::semaphore ? 65 : 1));
    {
        KeyGuard g = second->lock("k");
    }
    // A third user after the first left joins the same table.
    LockTable third(named(mode, name, true));
    CHECK(third.origin() == TableOrigin::joined);
    CHECK(third.key_stats().size() == 1);
    second.reset();
    CHECK(named_table_entries(name) > 0);
}

TEST_CASE("Named table: a child that inherited a named table unlinks nothing", "[named_table]")
{
    const std::string name = unique_name("inherit");
    LockTable table(named(LockMode::mutex, name));
    // The child destroys its inherited copy, as a worker whose exit ran destructors would. It
    // holds the opener's flock through the inherited fd, so it could take it for the last user's.
    Child child([&] {
        table.~LockTable();
        return 0;
    });
    REQUIRE(child.wait() == 0);
    CHECK(named_table_entries(name) == 1);
    LockTable joined(named(LockMode::mutex, name, true));
    CHECK(joined.origin() == TableOrigin::joined);
}

TEST_CASE("Named table: names are checked and only shared modes take one", "[named_table]")
{
    CHECK(LockTable::name_problem("orders-1_a").empty());
    CHECK_FALSE(LockTable::name_problem("").empty());
    CHECK_FALSE(LockTable::name_problem("a.b").empty());
    CHECK_FALSE(LockTable::name_problem("a/b").empty());
    CHECK_FALSE(LockTable::name_problem(std::string(LockTable::kMaxNameLength + 1, 'a')).empty());
    CHECK_THROWS_AS(LockTable(named(LockMode::mutex, "a.b")), std::invalid_argument);
    CHECK_THROWS_AS(LockTable(named(LockMode::thread, "x")), std::invalid_argument);
    CHECK_THROWS_AS(LockTable(named(LockMode::none, "x")), std::invalid_argument);
}
