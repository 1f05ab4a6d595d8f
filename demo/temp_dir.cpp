#include "temp_dir.h"

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>

#include "os/os_error.h"

namespace forklock::demo {

TempDir::TempDir(const char* prefix)
{
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/" + prefix + ".XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw os_error(errno, "mkdtemp({})", pattern);
    path_ = pattern;
}

TempDir::~TempDir()
{
    std::error_code error;
    std::filesystem::remove_all(path_, error);
    if (error) log_os_error(error.value(), "remove_all(" + path_.string() + ")");
}

} // namespace forklock::demo
