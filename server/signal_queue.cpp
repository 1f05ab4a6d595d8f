#include "signal_queue.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "os/os_error.h"

namespace forklock {
namespace {

int g_write_fd = -1;
std::vector<int> g_signals; // set before handlers are installed, then only read

extern "C" void queue_signal(int sig)
{
    int saved = errno;
    unsigned char byte = static_cast<unsigned char>(sig);
    // A full pipe drops this entry (see the header): there is nothing a handler could do.
    [[maybe_unused]] ssize_t n = ::write(g_write_fd, &byte, 1);
    errno = saved;
}

} // namespace

namespace {
void install(int sig, struct sigaction& sa)
{
    sa.sa_flags |= SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(sig, &sa, nullptr) != 0) throw os_error(errno, "sigaction({})", sig);
}
} // namespace

std::string signal_name(int sig)
{
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : std::to_string(sig);
}

void set_handler(int sig, void (*handler)(int))
{
    struct sigaction sa {};
    sa.sa_handler = handler;
    install(sig, sa);
}

void set_handler(int sig, void (*handler)(int, siginfo_t*, void*))
{
    struct sigaction sa {};
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    install(sig, sa);
}

SignalQueue::SignalQueue(std::initializer_list<int> signals)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        throw os_error(errno, "pipe2(O_CLOEXEC|O_NONBLOCK)");
    read_.reset(fds[0]);
    write_.reset(fds[1]);
    g_write_fd = fds[1];
    g_signals.assign(signals.begin(), signals.end());
    for (int sig : g_signals) set_handler(sig, queue_signal);
}

SignalQueue::~SignalQueue()
{
    for (int sig : g_signals) ::signal(sig, SIG_DFL);
    g_write_fd = -1;
}

std::optional<int> SignalQueue::wait(std::chrono::milliseconds timeout)
{
    pollfd p{read_.get(), POLLIN, 0};
    const int timeout_ms = static_cast<int>(timeout.count());
    // A handler that runs on this thread interrupts the poll (EINTR, SA_RESTART or not), having
    // just written its entry: read it now rather than report nothing.
    if (::poll(&p, 1, timeout_ms) < 0 && errno != EINTR)
        throw os_error(errno, "poll(signal pipe {}, {} ms)", read_.get(), timeout_ms);
    unsigned char byte = 0;
    if (::read(read_.get(), &byte, 1) != 1) return std::nullopt;
    return static_cast<int>(byte);
}

void SignalQueue::detach_in_child() noexcept
{
    for (int sig : g_signals) ::signal(sig, SIG_DFL);
    g_write_fd = -1;
    read_.reset();
    write_.reset();
}

} // namespace forklock
