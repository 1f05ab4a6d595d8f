#pragma once
// TmpfsMount: a tmpfs of a given size mounted on a fresh directory, for tests that need a file
// system that fills up (a full disk, ENOSPC). Mounting needs CAP_SYS_ADMIN (root): without it the
// object holds the reason, and the test skips. The destructor unmounts (lazily, MNT_DETACH: a
// server still holding files open does not keep the mount) and removes the directory, also when
// the test fails. Not shared between processes: a forked child must not destroy its copy.

#include <cstddef>
#include <filesystem>
#include <string>

#include "harness/temp_dir.h"

namespace forklock::harness {

class TmpfsMount final {
public:
    explicit TmpfsMount(std::size_t bytes);
    ~TmpfsMount();
    TmpfsMount(const TmpfsMount&) = delete;
    TmpfsMount& operator=(const TmpfsMount&) = delete;

    [[nodiscard]] bool mounted() const noexcept { return mounted_; }
    // Why mounting failed ("mount(tmpfs) failed: Operation not permitted ..."); empty if mounted.
    [[nodiscard]] const std::string& why_not() const noexcept { return why_not_; }
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return dir_.path(); }

    // fill writes `file` (in the mount) until the file system is full; returns the bytes written.
    std::size_t fill(const std::string& file) const;

private:
    TempDir dir_;
    bool mounted_ = false;
    std::string why_not_;
};

} // namespace forklock::harness
