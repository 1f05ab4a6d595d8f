#pragma once
// Errors from the operating system, in one shape everywhere: the call, its arguments, "failed",
// and errno's text, as nginx and folly write them ("sem_open(\"/fl.1\", O_CREAT|O_EXCL) failed").

#include <cerrno>
#include <string>
#include <system_error>

#include <fmt/format.h>

namespace forklock {

// os_error(errno, "open({})", path): a std::system_error whose what() is
// "open(/x) failed: No such file or directory".
template <typename... Args>
std::system_error os_error(int err, fmt::format_string<Args...> call, Args&&... args)
{
    return std::system_error(err, std::generic_category(),
                             fmt::format(call, std::forward<Args>(args)...) + " failed");
}

// Destructors must not throw: they report a failed close()/munmap() on stderr and carry on.
void log_os_error(int err, std::string_view what) noexcept;

} // namespace forklock
