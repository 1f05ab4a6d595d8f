// What a client may read of a server-side failure: directories cut out of messages, a full disk
// named as such.

#include <catch2/catch.hpp>

#include <cerrno>

#include "app/client_error.h"

using namespace forklock;

TEST_CASE("strip_directories: absolute paths keep their last component only", "[client_error]")
{
    CHECK(strip_directories("open(/srv/forklock-data/k, O_RDWR) failed") ==
          "open(k, O_RDWR) failed");
    CHECK(strip_directories("PostgreSQL connect: connection to server on socket "
                            "\"/tmp/pg.x/.s.PGSQL.5432\" failed: No such file or directory") ==
          "PostgreSQL connect: connection to server on socket \".s.PGSQL.5432\" failed: No such "
          "file or directory");
    CHECK(strip_directories("flock(\"/d/.locks/a.lock\", LOCK_EX) failed") ==
          "flock(\"a.lock\", LOCK_EX) failed");
    CHECK(strip_directories("/dev/shm/forklock-t1: in use") == "forklock-t1: in use");
    CHECK(strip_directories("dir=/a/b/ then") == "dir=b/ then");
}

TEST_CASE("strip_directories: text without an absolute path is unchanged", "[client_error]")
{
    for (const char* text : {"", "/", "a/b/c is relative", "see http://127.0.0.1:8000/locks",
                             "1/2 of the slots", "counter 'k': corrupt"}) {
        INFO(text);
        CHECK(strip_directories(text) == text);
    }
}

TEST_CASE("errno_reason: a full disk or quota says what to do; other errors are errno's text",
          "[client_error]")
{
    CHECK(is_disk_full(ENOSPC));
    CHECK(is_disk_full(EDQUOT));
    CHECK(!is_disk_full(EIO));
    CHECK(errno_reason(ENOSPC).find("no space left") == 0);
    CHECK(errno_reason(EDQUOT).find("quota") != std::string::npos);
    CHECK(errno_reason(ENOENT) == "No such file or directory");
}
