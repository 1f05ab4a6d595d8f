#include "progress.h"

#include <cstdio>

#include <sys/ioctl.h>
#include <unistd.h>

namespace forklock::demo {

void Progress::show(std::string_view line) noexcept
{
    if (!enabled_) return;
    // A line that wraps could not be erased by \r: keep it within the terminal's width.
    winsize size{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 1)
        line = line.substr(0, size.ws_col - 1U);
    // \r, then erase the line: the new text may be shorter than the old.
    std::fprintf(stderr, "\r\033[K%.*s", static_cast<int>(line.size()), line.data());
    std::fflush(stderr);
    shown_ = true;
}

void Progress::clear() noexcept
{
    if (!shown_) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    shown_ = false;
}

bool Progress::stderr_is_terminal() noexcept { return ::isatty(STDERR_FILENO) == 1; }

} // namespace forklock::demo
