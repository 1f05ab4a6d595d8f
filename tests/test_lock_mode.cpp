#include <catch2/catch.hpp>

#include <forklock/lock_mode.h>

using namespace forklock;

TEST_CASE("parse_lock_mode: every mode's name round-trips and 'process' means the robust mutex",
          "[lock_mode]")
{
    for (LockMode m :
         {LockMode::none, LockMode::thread, LockMode::semaphore, LockMode::mutex, LockMode::flock})
        CHECK(parse_lock_mode(to_string(m)) == m);
    CHECK(parse_lock_mode("process") == LockMode::mutex);
    CHECK_FALSE(parse_lock_mode("Mutex").has_value());
    CHECK_FALSE(parse_lock_mode("").has_value());
}

TEST_CASE("serializes_increments: shared modes need preload, flock does not, thread never spans "
          "workers",
          "[lock_mode]")
{
    CHECK_FALSE(serializes_increments(LockMode::none, true, 4, 1));
    CHECK_FALSE(serializes_increments(LockMode::none, false, 1, 4));
    CHECK(serializes_increments(LockMode::none, false, 1, 1));
    CHECK_FALSE(serializes_increments(LockMode::thread, true, 4, 1));
    CHECK(serializes_increments(LockMode::thread, false, 1, 4));
    CHECK_FALSE(serializes_increments(LockMode::semaphore, false, 4, 1));
    CHECK(serializes_increments(LockMode::semaphore, true, 4, 1));
    CHECK_FALSE(serializes_increments(LockMode::mutex, false, 2, 2));
    CHECK(serializes_increments(LockMode::mutex, true, 2, 2));
    CHECK(serializes_increments(LockMode::flock, false, 4, 4));
    CHECK(explain(LockMode::thread).find("fork") != std::string_view::npos);
}

TEST_CASE("serializes_increments: semaphore and mutex opened by one name need no preload",
          "[lock_mode]")
{
    CHECK(serializes_increments(LockMode::semaphore, false, 4, 1, true));
    CHECK(serializes_increments(LockMode::mutex, false, 2, 2, true));
    CHECK_FALSE(serializes_increments(LockMode::thread, false, 4, 1, true));
    CHECK_FALSE(serializes_increments(LockMode::none, false, 4, 1, true));
    CHECK(explain(LockMode::mutex).find("--lock-name") != std::string_view::npos);
}

TEST_CASE("lock_modes: one row per mode, in LockMode order, each found again by its name",
          "[lock_mode]")
{
    const auto modes = lock_modes();
    REQUIRE(modes.size() >= 7);
    for (std::size_t i = 0; i < modes.size(); ++i) {
        INFO(modes[i].name);
        CHECK(static_cast<std::size_t>(modes[i].mode) == i);
        CHECK(&facts(modes[i].mode) == &modes[i]);
        CHECK(parse_lock_mode(modes[i].name) == modes[i].mode);
        CHECK(explain(modes[i].mode) == modes[i].why);
        CHECK_FALSE(modes[i].holder_death.empty());
    }
}

TEST_CASE("lock_modes: the traits agree with each other and with what the modes do", "[lock_mode]")
{
    for (const ModeFacts& m : lock_modes()) {
        INFO(m.name);
        CHECK_FALSE((m.can_be_named && m.private_memory)); // a private table has no name
        CHECK_FALSE((m.shared_without_preload && m.private_memory));
        CHECK((m.excludes || m.private_memory)); // none is private
        CHECK((!m.needs_url || m.uses_lock_server));
        CHECK((!m.takes_over_dead_holder || !m.private_memory));
    }
    CHECK(facts(LockMode::postgres).needs_url);
    CHECK(facts(LockMode::postgres).uses_lock_server);
    const ModeFacts& redis = facts(LockMode::redis);
    CHECK(redis.needs_url);
    CHECK(redis.uses_lock_server);
    CHECK(redis.shared_without_preload);
    CHECK(redis.leases);
    CHECK_FALSE(redis.takes_over_dead_holder); // its lease has to expire first
    CHECK(serializes_increments(LockMode::redis, false, 4, 2));
    CHECK(facts(LockMode::flock).needs_lock_dir);
    CHECK(facts(LockMode::flock).shared_without_preload);
    CHECK(facts(LockMode::semaphore).can_be_named);
    CHECK(facts(LockMode::mutex).can_be_named);
    CHECK_FALSE(facts(LockMode::semaphore).takes_over_dead_holder); // the supervisor frees it
    CHECK(facts(LockMode::mutex).takes_over_dead_holder);           // EOWNERDEAD
    CHECK_FALSE(facts(LockMode::none).excludes);
    CHECK(facts(LockMode::thread).private_memory);
}
