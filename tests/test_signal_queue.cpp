// SignalQueue: the master's signal handlers only record; the run loop reads the records.
// SIGUSR1, SIGUSR2 and SIGHUP only: Catch2 has handlers of its own for TERM, INT, ABRT and SEGV.

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "harness/child.h"
#include "harness/wait.h"
#include "signal_queue.h"

using namespace forklock;
using namespace std::chrono_literals;
using forklock::harness::Child;
using forklock::harness::wait_until;

namespace {

// The state letter of /proc/PID/stat ('S' while sleeping in a system call such as poll).
char process_state(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto end_of_name = stat.rfind(')'); // the name may hold spaces and parentheses
    if (end_of_name == std::string::npos || end_of_name + 2 >= stat.size()) return '?';
    return stat[end_of_name + 2];
}

using Handler = void (*)(int);

Handler disposition(int sig)
{
    struct sigaction sa {};
    ::sigaction(sig, nullptr, &sa);
    return sa.sa_handler;
}

} // namespace

TEST_CASE("SignalQueue: a raised signal is reported, and only recorded", "[signal_queue]")
{
    SignalQueue queue({SIGHUP});
    REQUIRE(::raise(SIGHUP) == 0); // SIGHUP's default action would end this process
    CHECK(queue.wait(0ms) == SIGHUP);
    CHECK(queue.wait(0ms) == std::nullopt);
}

TEST_CASE("SignalQueue: wait reports nothing when no signal came within the timeout",
          "[signal_queue]")
{
    SignalQueue queue({SIGUSR1});
    const auto start = std::chrono::steady_clock::now();
    CHECK(queue.wait(30ms) == std::nullopt);
    CHECK(std::chrono::steady_clock::now() - start >= 30ms);
}

TEST_CASE("SignalQueue: signals are reported one at a time in the order they came, repeats too",
          "[signal_queue]")
{
    SignalQueue queue({SIGUSR1, SIGUSR2});
    REQUIRE(::raise(SIGUSR1) == 0);
    REQUIRE(::raise(SIGUSR2) == 0);
    REQUIRE(::raise(SIGUSR1) == 0);
    CHECK(queue.wait(0ms) == SIGUSR1);
    CHECK(queue.wait(0ms) == SIGUSR2);
    CHECK(queue.wait(0ms) == SIGUSR1);
    CHECK(queue.wait(0ms) == std::nullopt);
}

TEST_CASE("SignalQueue: a signal from another process wakes a wait blocked in poll",
          "[signal_queue]")
{
    SignalQueue queue({SIGUSR2});
    const pid_t parent = ::getpid();
    // The child signals once the parent sleeps (in poll, the only place it can), so the
    // handler interrupts the poll itself rather than filling the pipe before it.
    Child child([parent] {
        if (!wait_until([parent] { return process_state(parent) == 'S'; }, 10s)) return 1;
        return ::kill(parent, SIGUSR2) == 0 ? 0 : 2;
    });
    const auto start = std::chrono::steady_clock::now();
    const auto sig = queue.wait(20s);
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(child.wait() == 0);
    CHECK(sig == SIGUSR2);
    CHECK(waited < 15s);
}

TEST_CASE("SignalQueue: a full pipe drops newer signals and the handler leaves errno alone",
          "[signal_queue]")
{
    SignalQueue queue({SIGUSR1});
    constexpr int kRaised = 70'000; // more entries than a default pipe (64 KiB) holds
    int failed = 0;
    for (int i = 0; i < kRaised; ++i) failed += ::raise(SIGUSR1) != 0;
    REQUIRE(failed == 0);
    errno = EDOM;
    REQUIRE(::raise(SIGUSR1) == 0); // its handler's write fails with EAGAIN
    CHECK(errno == EDOM);
    int reported = 0;
    while (queue.wait(0ms) == SIGUSR1) ++reported;
    CHECK(reported > 0);
    CHECK(reported < kRaised);
}

TEST_CASE("SignalQueue: destroying the queue puts back the default actions", "[signal_queue]")
{
    {
        SignalQueue queue({SIGUSR1});
        REQUIRE(disposition(SIGUSR1) != SIG_DFL);
    }
    CHECK(disposition(SIGUSR1) == SIG_DFL);
}

TEST_CASE("SignalQueue: after detach_in_child a child's signals are its own", "[signal_queue]")
{
    SignalQueue queue({SIGUSR1});
    Child child([&queue] {
        queue.detach_in_child();
        ::raise(SIGUSR1); // the default action: the child dies of it
        return 0;
    });
    CHECK(child.wait() == 128 + SIGUSR1);
    CHECK(queue.wait(0ms) == std::nullopt); // nothing reached the parent's pipe
}
