#pragma once
// wait_until: the one way the harness, the demo and the tests wait for something that another
// thread or process makes true: poll a condition until a deadline, never a fixed sleep.

#include <chrono>
#include <functional>
#include <thread>

namespace forklock::harness {

// wait_until polls `condition` every `interval` until it holds (true) or `timeout` has passed
// (false). The condition is evaluated once more at the deadline, so a slow condition still gets
// its last chance. Runs on the calling thread; the condition may throw, which ends the wait.
inline bool wait_until(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10),
                       std::chrono::milliseconds interval = std::chrono::milliseconds(1))
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return condition();
        std::this_thread::sleep_for(interval);
    }
    return true;
}

} // namespace forklock::harness
