#pragma once
// NotifySocket: the test's own NOTIFY_SOCKET, standing in for systemd's: a unix datagram socket
// bound at a path (removed with it) that a server started with NOTIFY_SOCKET=path() sends its
// sd_notify messages to. One thread reads it; messages queue in the kernel until read.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "os/unique_fd.h"

namespace forklock::harness {

class NotifySocket final {
public:
    // Binds `path` (which must not exist). Throws std::system_error.
    explicit NotifySocket(std::filesystem::path path);
    ~NotifySocket();
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    // The next message, or nullopt when none came within `timeout`.
    std::optional<std::string> next(std::chrono::milliseconds timeout);
    // Reads messages until one holds the line `line` (e.g. "READY=1") and returns it; every
    // message read on the way, that one included, is appended to `seen`. nullopt at the deadline.
    std::optional<std::string> wait_for(const std::string& line, std::vector<std::string>& seen,
                                        std::chrono::milliseconds timeout);

private:
    std::filesystem::path path_;
    UniqueFd fd_;
};

// has_line: whether `message` ("KEY=VALUE\n...") has `line` as one of its lines.
bool has_line(const std::string& message, const std::string& line);

} // namespace forklock::harness
