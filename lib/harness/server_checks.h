#pragma once
// What the lock-server tests (postgres, redis) ask of a running or refused server: a counter's
// value, and a start that must fail with exit code 2 before it listens. Catch2 checks: include
// only from a test.

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "harness/http_client.h"
#include "harness/server_process.h"

namespace forklock::harness {

inline std::uint64_t counter_value(const ServerProcess& server, const std::string& key)
{
    return http_request(server.endpoint(), "GET", "/counter/" + key)
        .json()["value"]
        .get<std::uint64_t>();
}

// refused: a server with these flags exits with code 2 before it boots a worker or listens;
// its log.
inline std::string refused(std::vector<std::string> args)
{
    ServerSpec spec;
    spec.args = std::move(args);
    spec.refused = true;
    ServerProcess server(spec);
    const auto code = server.wait_exit(std::chrono::seconds(20));
    INFO(server.log_tail());
    CHECK(code == 2);
    CHECK(server.log().find("Booting worker") == std::string::npos);
    CHECK(server.log().find("Listening at") == std::string::npos);
    return server.log();
}

} // namespace forklock::harness
