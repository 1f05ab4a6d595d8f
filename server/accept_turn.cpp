#include "accept_turn.h"

#include <algorithm>

namespace forklock {

AcceptTurn::AcceptTurn(std::atomic<std::uint64_t>& accepts,
                       const std::atomic<std::uint32_t>& loops) noexcept
    : accepts_(accepts), loops_(loops)
{
}

void AcceptTurn::accepted() noexcept
{
    served_since_accept_ = false;
    wait_for_another_ = true;
    ticket_ = accepts_.fetch_add(1, std::memory_order_relaxed) + 1;
}

void AcceptTurn::served() noexcept { served_since_accept_ = true; }

void AcceptTurn::skip() noexcept
{
    served_since_accept_ = true;
    wait_for_another_ = false;
}

bool AcceptTurn::my_turn() const noexcept
{
    if (!served_since_accept_) return false;
    if (!wait_for_another_ || loops_.load(std::memory_order_relaxed) <= 1) return true;
    return accepts_.load(std::memory_order_relaxed) > ticket_;
}

std::uint32_t AcceptTurn::share(std::uint32_t backlog) noexcept
{
    const std::uint32_t loops = std::max<std::uint32_t>(1, loops_.load(std::memory_order_relaxed));
    if (backlog >= loops * kDeepPerLoop) burst_ = true;
    if (backlog < loops) burst_ = false;
    return burst_ ? std::min(kMaxBatch, (backlog + loops - 1) / loops) : 0;
}

} // namespace forklock
