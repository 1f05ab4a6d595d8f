#pragma once
// TempDir: a fresh, private directory under $TMPDIR (or /tmp), removed with everything in it
// when the TempDir is destroyed, also when a test fails. Its name is unique (mkdtemp), so tests
// and processes running at the same time never share one. Move-only; not shared between
// processes: a forked child must not destroy its copy (it exits with _exit()).

#include <filesystem>
#include <string_view>

namespace forklock::harness {

class TempDir final {
public:
    // Creates $TMPDIR/PREFIX.XXXXXX. Throws std::system_error when mkdtemp fails.
    explicit TempDir(std::string_view prefix = "forklock-test");
    ~TempDir();
    TempDir(TempDir&& other) noexcept;
    TempDir& operator=(TempDir&& other) noexcept;
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

private:
    void remove() noexcept;

    std::filesystem::path path_;
};

} // namespace forklock::harness
