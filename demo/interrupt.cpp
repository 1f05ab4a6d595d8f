#include "interrupt.h"

#include <array>
#include <atomic>
#include <csignal>

#include <unistd.h>

namespace forklock::demo {
namespace {

std::atomic<int> g_signals{0};
// Lock-free atomics only: the handler reads them.
std::array<std::atomic<int>, 8> g_groups{};

void on_signal(int) noexcept
{
    if (g_signals.fetch_add(1) == 0) return;
    // The user insists: no graceful stop, leave nothing behind.
    for (auto& group : g_groups) {
        const int pgid = group.load();
        if (pgid > 0) ::kill(-pgid, SIGKILL);
    }
    ::_exit(130);
}

} // namespace

void install_interrupt_handlers()
{
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &action, nullptr);
    // A server that dies under us must not kill the demo through a write to its socket.
    std::signal(SIGPIPE, SIG_IGN);
}

bool interrupted() noexcept { return g_signals.load() > 0; }

void throw_if_interrupted()
{
    if (interrupted()) throw Interrupted();
}

void register_server_group(int pgid) noexcept
{
    for (auto& group : g_groups) {
        int empty = 0;
        if (group.compare_exchange_strong(empty, pgid)) return;
    }
}

void unregister_server_group(int pgid) noexcept
{
    for (auto& group : g_groups) {
        int expected = pgid;
        if (group.compare_exchange_strong(expected, 0)) return;
    }
}

} // namespace forklock::demo
