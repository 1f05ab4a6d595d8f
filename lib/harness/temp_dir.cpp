#include "harness/temp_dir.h"

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
#include <utility>

#include "os/os_error.h"

namespace forklock::harness {

TempDir::TempDir(std::string_view prefix)
{
    const char* base = std::getenv("TMPDIR");
    std::string pattern = fmt::format("{}/{}.XXXXXX", base && *base ? base : "/tmp", prefix);
    if (::mkdtemp(pattern.data()) == nullptr) throw os_error(errno, "mkdtemp({})", pattern);
    path_ = pattern;
}

TempDir::~TempDir() { remove(); }

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept
{
    if (this != &other) {
        remove();
        path_ = std::exchange(other.path_, {});
    }
    return *this;
}

void TempDir::remove() noexcept
{
    if (path_.empty()) return;
    std::error_code error;
    std::filesystem::remove_all(path_, error);
    if (error) log_os_error(error.value(), "remove_all(" + path_.string() + ")");
}

} // namespace forklock::harness
