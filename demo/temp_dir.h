#pragma once
// TempDir: a fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.

#include <filesystem>

namespace forklock::demo {

class TempDir final {
public:
    explicit TempDir(const char* prefix);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
};

} // namespace forklock::demo
