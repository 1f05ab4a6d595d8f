#include "app/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>

#include "os/os_error.h"

namespace forklock {
namespace {

std::atomic<LogLevel> g_level{LogLevel::info};
std::atomic<int> g_access_fd{-1};
std::string g_access_target; // written only while single-threaded (startup)

const char* level_name(LogLevel level)
{
    switch (level) {
    case LogLevel::debug: return "DEBUG";
    case LogLevel::info: return "INFO";
    case LogLevel::warning: return "WARNING";
    case LogLevel::error: return "ERROR";
    case LogLevel::critical: return "CRITICAL";
    }
    return "?";
}

std::string timestamp(const char* format)
{
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::localtime_r(&now, &tm);
    char buf[64];
    std::size_t n = std::strftime(buf, sizeof buf, format, &tm);
    return std::string(buf, n);
}

void write_line(int fd, std::string_view line) noexcept
{
    while (!line.empty()) {
        ssize_t n = ::write(fd, line.data(), line.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        line.remove_prefix(static_cast<std::size_t>(n));
    }
}

int open_log_file(const std::string& target)
{
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw os_error(errno, "open({}, O_APPEND)", target);
    return fd;
}

} // namespace

void set_log_level(LogLevel level) noexcept { g_level = level; }

bool log_enabled(LogLevel level) noexcept
{
    return level >= g_level.load(std::memory_order_relaxed);
}

void log_line(LogLevel level, std::string_view message) noexcept
{
    try {
        write_line(STDERR_FILENO,
                   fmt::format("[{}] [{}] [{}] {}\n", timestamp("%Y-%m-%d %H:%M:%S %z"), ::getpid(),
                               level_name(level), message));
    } catch (...) {
        write_line(STDERR_FILENO, "forklock: out of memory while logging\n");
    }
}

void open_access_log(const std::string& target)
{
    g_access_target = target;
    if (target.empty()) return;
    g_access_fd = target == "-" ? STDERR_FILENO : open_log_file(target);
}

void reopen_access_log() noexcept
{
    int fd = g_access_fd.load();
    if (fd < 0 || fd == STDERR_FILENO) return;
    try {
        int fresh = open_log_file(g_access_target);
        ::dup2(fresh, fd);
        ::close(fresh);
    } catch (const std::exception& e) {
        log(LogLevel::error, "Could not reopen the access log: {}", e.what());
    }
}

bool access_log_enabled() noexcept { return g_access_fd.load(std::memory_order_relaxed) >= 0; }

std::string format_access(const AccessRecord& r)
{
    auto dash = [](std::string_view s) { return s.empty() ? std::string_view("-") : s; };
    return fmt::format("{} - - [{}] \"{}\" {} {} \"{}\" \"{}\"\n", dash(r.remote),
                       timestamp("%d/%b/%Y:%H:%M:%S %z"), r.request_line, r.status, r.bytes,
                       dash(r.referer), dash(r.user_agent));
}

void log_access(const AccessRecord& record) noexcept
{
    int fd = g_access_fd.load(std::memory_order_relaxed);
    if (fd < 0) return;
    try {
        write_line(fd, format_access(record));
    } catch (...) {
    }
}

} // namespace forklock
