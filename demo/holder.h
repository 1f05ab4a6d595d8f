#pragma once
// What the acts that signal a key's holder share (Act 2 kills it, Act 3 pauses it): finding the
// worker that holds a key, queries retried while a thread of the server is blocked, and plain
// increments counted when they commit. Every wait gives up on Ctrl-C (throws Interrupted).

#include <string>

#include <sys/types.h>

#include <fmt/format.h>

#include "server_api.h"

namespace forklock::demo {

// Sleeps `pause`, after throwing Interrupted if Ctrl-C came.
void sleep_or_throw(Clock::duration pause);

// retry: runs `query` until it answers (a connection may land on a thread blocked by a long
// hold, or on a stopped worker); throws HttpError when it has not answered within 10 s.
template <typename Query>
auto retry(const Query& query, const char* what)
{
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    for (;;) {
        try {
            return query();
        } catch (const HttpError&) {
            if (Clock::now() >= deadline)
                throw HttpError(fmt::format("{}: no answer in 10 s", what));
        }
        sleep_or_throw(std::chrono::milliseconds(10));
    }
}

// wait_for_owner: polls GET /locks until a worker owns `key`; its pid. Throws
// std::runtime_error when nobody has taken it within 10 s.
pid_t wait_for_owner(const ServerApi& api, const std::string& key);

// commit: `count` increments of `key` without a hold, one after another; how many answered 200.
int commit(const ServerApi& api, const std::string& key, int count);

} // namespace forklock::demo
