// flock's failure mode first: a descriptor inherited across fork() is one open file description,
// so it excludes nobody. The lock table opens the file anew for every acquisition.

#include <catch2/catch.hpp>

#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "harness/child.h"
#include "harness/temp_dir.h"
#include "locks/primitives/key_file_lock.h"
#include "os/monotonic_clock.h"

using namespace forklock;
using namespace forklock::harness;

TEST_CASE("flock: an fd inherited from the parent lets parent and child both hold the lock",
          "[key_file_lock][fork]")
{
    TempDir dir;
    const auto file = dir.path() / "k.lock";
    UniqueFd inherited = open_lock_file(file);
    REQUIRE(try_lock_file(inherited, file));
    Child child([&] { return try_lock_file(inherited, file) ? 0 : 1; });
    CHECK(child.wait() == 0); // the child "acquired" what the parent holds
    inherited.reset();
}

TEST_CASE("flock: descriptors each process opens itself exclude each other",
          "[key_file_lock][fork]")
{
    TempDir dir;
    const auto file = dir.path() / "k.lock";
    UniqueFd mine = open_lock_file(file);
    REQUIRE(try_lock_file(mine, file));
    Child child([&] {
        const UniqueFd own = open_lock_file(file);
        return try_lock_file(own, file) ? 1 : 0;
    });
    CHECK(child.wait() == 0);
    mine.reset();
}

TEST_CASE("flock: lock_file_until gives up at its deadline", "[key_file_lock]")
{
    TempDir dir;
    const auto file = dir.path() / "k.lock";
    UniqueFd a = open_lock_file(file);
    UniqueFd b = open_lock_file(file);
    REQUIRE(try_lock_file(a, file));
    CHECK_FALSE(lock_file_until(b, file, monotonic_ns() + 20'000'000));
    a.reset();
    CHECK(lock_file_until(b, file, monotonic_ns() + 20'000'000));
    b.reset();
}

TEST_CASE("flock: lock_key_file moves on to the current file when the one it waited on is removed",
          "[key_file_lock]")
{
    TempDir dir;
    const auto file = dir.path() / "k.lock";
    UniqueFd holder = open_lock_file(file);
    REQUIRE(try_lock_file(holder, file));
    UniqueFd opened = open_lock_file(file); // opened before the removal, as a waiter would have

    // One try on a held file: not locked, and the descriptor stays open to wait on.
    KeyFile tried = lock_key_file(file, std::int64_t{0}, std::move(opened));
    CHECK_FALSE(tried.locked);
    REQUIRE(tried.fd.get() >= 0);

    bool locked = false;
    UniqueFd fd;
    // A jthread: a failed REQUIRE below joins it on the way out instead of std::terminate.
    std::jthread waiter([&] {
        KeyFile waited = lock_key_file(file, monotonic_ns() + 5'000'000'000, std::move(tried.fd));
        locked = waited.locked;
        fd = std::move(waited.fd);
    });
    REQUIRE(::unlink(file.c_str()) == 0); // the remover's step, taken while holding the lock
    holder.reset();
    waiter.join();

    REQUIRE(locked);
    struct stat by_fd {
    }, by_path{};
    REQUIRE(::fstat(fd.get(), &by_fd) == 0);
    REQUIRE(::stat(file.c_str(), &by_path) == 0);
    CHECK(by_fd.st_ino == by_path.st_ino); // the file at the path now, not the removed one
    CHECK(by_fd.st_nlink == 1);
    fd.reset();
}
