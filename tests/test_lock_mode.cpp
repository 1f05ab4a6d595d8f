#include <catch2/catch.hpp>

#include "lock_mode.h"

using namespace forklock;

TEST_CASE("parse_lock_mode: every mode's name round-trips and 'process' means the robust mutex",
          "[lock_mode]")
{
    for (LockMode m : {LockMode::none, LockMode::thread, LockMode::semaphore, LockMode::mutex,
                       LockMode::flock})
        CHECK(parse_lock_mode(to_string(m)) == m);
    CHECK(parse_lock_mode("process") == LockMode::mutex);
    CHECK_FALSE(parse_lock_mode("Mutex").has_value());
    CHECK_FALSE(parse_lock_mode("").has_value());
}

TEST_CASE("excludes_processes: only the shared modes, and only two of them need preload",
          "[lock_mode]")
{
    CHECK_FALSE(excludes_processes(LockMode::none));
    CHECK_FALSE(excludes_processes(LockMode::thread));
    CHECK(excludes_processes(LockMode::semaphore));
    CHECK(excludes_processes(LockMode::flock));
    CHECK(needs_preload(LockMode::mutex));
    CHECK_FALSE(needs_preload(LockMode::flock));
    CHECK(explain(LockMode::thread).find("fork") != std::string_view::npos);
}
