// NamedSemaphore: a POSIX named semaphore, unlinked at birth, shared with children by fork().

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <semaphore.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "harness/child.h"
#include "harness/shm_names.h"
#include "harness/wait.h"
#include "os/memory_region.h"
#include "os/monotonic_clock.h"
#include "os/named_semaphore.h"

using namespace forklock;
using namespace forklock::harness;

namespace {

// A name of this process's own, so tests running at once elsewhere never meet it.
std::string test_name(const char* what) { return fmt::format("/forklock.{}.{}", ::getpid(), what); }

timespec after_ms(std::int64_t ms)
{
    const std::int64_t at = monotonic_ns() + ms * 1'000'000;
    return timespec{static_cast<time_t>(at / 1'000'000'000), static_cast<long>(at % 1'000'000'000)};
}

// LeftName: a name made with sem_open and closed, as a creator killed before sem_unlink leaves
// it; unlinked again by the destructor, so a failing test leaves nothing either.
struct LeftName {
    std::string name;
    explicit LeftName(std::string n) : name(std::move(n))
    {
        sem_t* raw = ::sem_open(name.c_str(), O_CREAT | O_EXCL, 0600, 0);
        if (raw == SEM_FAILED)
            throw std::system_error(errno, std::generic_category(), "sem_open(" + name + ")");
        ::sem_close(raw);
    }
    ~LeftName() { NamedSemaphore::remove(name); }
    LeftName(const LeftName&) = delete;
    LeftName& operator=(const LeftName&) = delete;
};

std::filesystem::path shm_path_of(const std::string& name)
{
    return "/dev/shm/sem." + name.substr(1);
}

} // namespace

TEST_CASE("NamedSemaphore: create_unlinked leaves no name in /dev/shm", "[named_semaphore]")
{
    const int before = own_semaphore_names();
    {
        NamedSemaphore s =
            NamedSemaphore::create_unlinked(fmt::format("/forklock.{}.x", ::getpid()));
        CHECK(own_semaphore_names() == before);
        s.post();
        CHECK(s.try_wait());
        CHECK_FALSE(s.try_wait());
    }
    CHECK(own_semaphore_names() == before);
}

TEST_CASE("NamedSemaphore: sem_open errors name the call, its arguments and errno",
          "[named_semaphore]")
{
    try {
        (void)NamedSemaphore::create_unlinked("/bad/name");
        FAIL("sem_open accepted a name with a slash");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find(
                  "sem_open(\"/bad/name\", O_CREAT|O_EXCL, 0600, 0) failed") != std::string::npos);
    }
}

TEST_CASE("NamedSemaphore: try_wait returns false at zero and takes one count per call",
          "[named_semaphore]")
{
    NamedSemaphore s = NamedSemaphore::create_unlinked(test_name("count"), 2);
    CHECK(s.try_wait());
    CHECK(s.try_wait());
    CHECK_FALSE(s.try_wait());
    s.post();
    CHECK(s.try_wait());
    CHECK_FALSE(s.try_wait());
}

TEST_CASE("NamedSemaphore: wait_until returns at once when counted and false at its deadline",
          "[named_semaphore]")
{
    NamedSemaphore s = NamedSemaphore::create_unlinked(test_name("timed"), 1);
    CHECK(s.wait_until(after_ms(1000))); // counted: no wait
    const std::int64_t start = monotonic_ns();
    CHECK_FALSE(s.wait_until(after_ms(30)));
    const std::int64_t waited = monotonic_ns() - start;
    CHECK(waited >= 30'000'000);
    CHECK(waited < 2'000'000'000);
    CHECK_FALSE(s.wait_until(after_ms(-1))); // a deadline already past: one try, no wait
}

TEST_CASE("NamedSemaphore: a child forked after create_unlinked shares it, name or no name",
          "[named_semaphore][fork]")
{
    NamedSemaphore to_child = NamedSemaphore::create_unlinked(test_name("down"));
    NamedSemaphore to_parent = NamedSemaphore::create_unlinked(test_name("up"));
    Child child([&] {
        // Blocks until the parent posts; then answers.
        if (!to_child.wait_until(after_ms(10'000))) return 1;
        to_parent.post();
        return 0;
    });
    CHECK_FALSE(to_parent.try_wait()); // nothing posted before the parent's post
    to_child.post();
    CHECK(to_parent.wait_until(after_ms(10'000)));
    CHECK(child.wait() == 0);
}

TEST_CASE("NamedSemaphore: remove unlinks a name left behind, and says whether there was one",
          "[named_semaphore]")
{
    const LeftName left(test_name("left"));
    const std::string& name = left.name;
    REQUIRE(std::filesystem::exists(shm_path_of(name)));
    CHECK(own_semaphore_names() == 1);
    // While the name exists, create_unlinked refuses it (O_EXCL) and says so.
    CHECK_THROWS_AS(NamedSemaphore::create_unlinked(name), std::system_error);

    CHECK(NamedSemaphore::remove(name));
    CHECK_FALSE(std::filesystem::exists(shm_path_of(name)));
    CHECK(own_semaphore_names() == 0);
    CHECK_FALSE(NamedSemaphore::remove(name));
    NamedSemaphore again = NamedSemaphore::create_unlinked(name); // the name is free again
    CHECK(own_semaphore_names() == 0);
}

TEST_CASE("NamedSemaphore: the /dev/shm count sees a child's names, not other processes'",
          "[named_semaphore][fork]")
{
    // A name made by a process that is not ours: pid 1 is never this test or its child.
    const LeftName foreign("/forklock.1.foreign-" + std::to_string(::getpid()));
    CHECK(own_semaphore_names() == 0);
    MemoryRegion shared(sizeof(std::atomic<pid_t>), MemoryRegion::Sharing::shared);
    auto& made_by = *new (shared.data()) std::atomic<pid_t>{0};
    Child child([&] {
        const std::string mine = fmt::format("/forklock.{}.child", ::getpid());
        sem_t* s = ::sem_open(mine.c_str(), O_CREAT | O_EXCL, 0600, 0);
        if (s == SEM_FAILED) return 1;
        ::sem_close(s);
        made_by = ::getpid();
        return 0;
    });
    const int rc = child.wait();
    const std::string childs = fmt::format("/forklock.{}.child", child.pid());
    REQUIRE(rc == 0);
    CHECK(made_by.load() == child.pid());
    CHECK(own_semaphore_names() == 1); // the child's, left behind
    CHECK(NamedSemaphore::remove(childs));
    CHECK(own_semaphore_names() == 0);
}
