// What step mode adds to an increment when no key is in step mode, in ns: the StepTicket an
// increment makes (Api::increment: the ticket, its five gates, entering_lock, the destructor)
// against a board with no key on, timed in a loop. The figure to set beside an increment's own
// cost (bench/step_cost.sh: the workers' CPU time per increment, about 10 us on loopback).

#include <chrono>
#include <cstdio>
#include <memory>

#include "app/scoreboard.h"
#include "app/step_board.h"

using namespace forklock;

namespace {

void beat() noexcept {}

// One increment's passage through the gates, as Api::increment makes it.
void one_increment(StepBoard& board)
{
    StepTicket step(&board, "hot", std::chrono::milliseconds(30'000), beat);
    step.gate(StepPoint::asked);
    step.entering_lock();
    step.gate(StepPoint::holds);
    step.gate(StepPoint::read, 41);
    step.gate(StepPoint::wrote);
    step.gate(StepPoint::unlocked);
}

} // namespace

int main()
{
    auto state = std::make_unique<StepBoardState>(); // value-initialised: no key on
    StepBoard board(*state);
    constexpr int kRounds = 5, kN = 10'000'000;
    double best = 1e9;
    for (int round = 0; round < kRounds; ++round) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < kN; ++i) one_increment(board);
        const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - t0;
        best = std::min(best, took.count() / kN);
    }
    std::printf("step gates with no key in step mode: %.2f ns per increment (best of %d x %d)\n",
                best, kRounds, kN);
}
