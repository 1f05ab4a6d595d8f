#pragma once
// IncrementLoad: one thread that POSTs /counter/KEY/increment, each on a fresh connection, until
// stopped: a client for tests that reload or upgrade a server under load. Every answered (200)
// increment is counted; every other outcome (a refused, reset or unanswered connection, another
// status) is kept as one line, until stop_judging() (from then on the server is expected to go
// away, and failures are not kept). Stop it (finish()) before the server it loads goes.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness/http_client.h"

namespace forklock::harness {

class IncrementLoad final {
public:
    IncrementLoad(Endpoint to, std::string key);
    ~IncrementLoad();
    IncrementLoad(const IncrementLoad&) = delete;
    IncrementLoad& operator=(const IncrementLoad&) = delete;

    [[nodiscard]] std::uint64_t acked() const noexcept { return acked_.load(); }
    void stop_judging() noexcept { judging_ = false; }
    // Stops the thread and returns the failures it kept, one line each.
    std::vector<std::string> finish();

private:
    void run(const std::stop_token& stop);

    Endpoint to_;
    std::string target_;
    std::atomic<std::uint64_t> acked_{0};
    std::atomic<bool> judging_{true};
    std::mutex mutex_;
    std::vector<std::string> failures_;
    std::jthread thread_; // last: started once the members it uses exist
};

} // namespace forklock::harness
