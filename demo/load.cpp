#include "load.h"

#include <atomic>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "interrupt.h"
#include "server_api.h"

namespace forklock::demo {
namespace {

using namespace std::chrono_literals;

// Shared by the client threads: the next request to send, and what came back.
class LoadState final {
public:
    explicit LoadState(const LoadPlan& plan) : plan_(plan) {}

    void run_client();
    [[nodiscard]] int done() const noexcept { return done_.load(); }
    [[nodiscard]] LoadResult result();

private:
    void record(const IncrementReply& reply);
    void record_error(std::string what);

    const LoadPlan& plan_;
    std::atomic<int> next_{0};
    std::atomic<int> done_{0};
    std::mutex mutex_;
    LoadResult result_;
    std::map<long, int> values_;
    std::exception_ptr interrupted_;
};

void LoadState::run_client()
{
    const ServerApi api(plan_.port);
    // Generous: a safe mode serialises all `concurrency` requests behind one lock.
    const auto timeout = 20s + std::chrono::milliseconds(4 * plan_.hold_ms * plan_.concurrency);
    while (next_.fetch_add(1) < plan_.requests) {
        try {
            record(api.increment(plan_.key, plan_.hold_ms, -1, timeout));
        } catch (const Interrupted&) {
            const std::lock_guard lock(mutex_);
            interrupted_ = std::current_exception();
            return;
        } catch (const std::exception& error) {
            record_error(error.what());
        }
        done_.fetch_add(1);
    }
}

void LoadState::record(const IncrementReply& reply)
{
    if (reply.status != 200) return record_error("HTTP " + std::to_string(reply.status));
    const std::lock_guard lock(mutex_);
    ++result_.sent;
    ++result_.ok;
    result_.pids.insert(reply.pid);
    if (reply.waited_ms >= kWaitedMs) ++result_.waited;
    if (++values_[reply.value] > 1) ++result_.duplicate_values;
}

void LoadState::record_error(std::string what)
{
    const std::lock_guard lock(mutex_);
    ++result_.sent;
    ++result_.errors;
    if (result_.first_error.empty()) result_.first_error = std::move(what);
}

LoadResult LoadState::result()
{
    if (interrupted_) std::rethrow_exception(interrupted_);
    return result_;
}

} // namespace

LoadResult fire_increments(const LoadPlan& plan, const std::function<void(int)>& progress)
{
    const auto start = std::chrono::steady_clock::now();
    LoadState state(plan);
    {
        std::vector<std::jthread> clients;
        for (int i = 0; i < plan.concurrency; ++i)
            clients.emplace_back([&state] { state.run_client(); });
        // Bounded: each client stops after its requests, each request has a deadline.
        while (state.done() < plan.requests && !interrupted()) {
            progress(state.done());
            std::this_thread::sleep_for(100ms);
        }
    }
    progress(state.done());
    LoadResult result = state.result();
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

} // namespace forklock::demo
