#include "os/os_error.h"

#include <cstdio>
#include <cstring>

namespace forklock {

void log_os_error(int err, std::string_view what) noexcept
{
    std::fprintf(stderr, "forklock: %.*s failed: %s\n", static_cast<int>(what.size()), what.data(),
                 std::strerror(err));
}

} // namespace forklock
