#include "holder.h"

#include <stdexcept>
#include <thread>

#include "interrupt.h"

namespace forklock::demo {

void sleep_or_throw(Clock::duration pause)
{
    throw_if_interrupted();
    std::this_thread::sleep_for(pause);
}

pid_t wait_for_owner(const ServerApi& api, const std::string& key)
{
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
        if (const pid_t owner = retry([&] { return api.lock_owner(key); }, "GET /locks"); owner > 0)
            return owner;
        sleep_or_throw(std::chrono::milliseconds(10));
    }
    throw std::runtime_error(fmt::format("no worker took the key '{}' within 10 s", key));
}

int commit(const ServerApi& api, const std::string& key, int count)
{
    int committed = 0;
    for (int i = 0; i < count; ++i)
        committed += api.increment(key, 0, 5'000, std::chrono::seconds(10)).status == 200 ? 1 : 0;
    return committed;
}

} // namespace forklock::demo
