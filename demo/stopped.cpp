#include "stopped.h"

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "holder.h"
#include "os/os_error.h"

namespace forklock::demo {

Stopped::Stopped(pid_t pid) : pid_(pid)
{
    if (::kill(pid_, SIGSTOP) != 0) throw os_error(errno, "kill({}, SIGSTOP)", pid_);
    stopped_at_ = Clock::now();
}

bool Stopped::wait_stopped(Clock::duration timeout) const
{
    const auto deadline = Clock::now() + timeout;
    while (!is_stopped(pid_) && Clock::now() < deadline)
        sleep_or_throw(std::chrono::milliseconds(1));
    return is_stopped(pid_);
}

void Stopped::resume() noexcept
{
    if (pid_ != 0) ::kill(pid_, SIGCONT);
    pid_ = 0;
}

bool is_stopped(pid_t pid)
{
    std::error_code error;
    const std::filesystem::path tasks = fmt::format("/proc/{}/task", pid);
    for (std::filesystem::directory_iterator it(tasks, error), end; !error && it != end;
         it.increment(error)) {
        std::ifstream in(it->path() / "stat");
        std::string stat((std::istreambuf_iterator<char>(in)), {});
        const auto close = stat.rfind(')');
        if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'T')
            return false;
    }
    return !error;
}

PendingReply::PendingReply(std::function<IncrementReply()> call)
    : thread_([this, call = std::move(call)] {
          try {
              reply_ = call();
          } catch (const std::exception&) {
              reply_ = IncrementReply{};
          }
          answered_.store(true);
      })
{
}

bool PendingReply::wait(Clock::duration timeout) const
{
    const auto deadline = Clock::now() + timeout;
    while (!answered() && Clock::now() < deadline) sleep_or_throw(std::chrono::milliseconds(1));
    return answered();
}

} // namespace forklock::demo
