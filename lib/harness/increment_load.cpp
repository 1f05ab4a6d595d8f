#include "harness/increment_load.h"

#include <chrono>

#include <fmt/format.h>

namespace forklock::harness {

IncrementLoad::IncrementLoad(Endpoint to, std::string key)
    : to_(std::move(to)), target_("/counter/" + key + "/increment"),
      thread_([this](std::stop_token stop) { run(stop); })
{
}

IncrementLoad::~IncrementLoad() { (void)finish(); }

void IncrementLoad::run(const std::stop_token& stop)
{
    while (!stop.stop_requested()) {
        const HttpResponse r = http_request(to_, "POST", target_, std::chrono::seconds(10));
        if (r.status == 200) {
            acked_.fetch_add(1);
        } else if (judging_.load()) {
            const std::lock_guard lock(mutex_);
            failures_.push_back(fmt::format("{} {}", r.status, r.error));
        }
    }
}

std::vector<std::string> IncrementLoad::finish()
{
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
    const std::lock_guard lock(mutex_);
    return failures_;
}

} // namespace forklock::harness
