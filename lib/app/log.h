#pragma once
// Process-wide logging in gunicorn's format:
//   [2026-11-22 01:02:03 +0000] [1234] [INFO] Listening at: http://127.0.0.1:8000 (1234)
// Error log to stderr; optional access log (gunicorn's default access format). Every line is
// one write(2), so lines from several processes and threads never interleave.
// Thread safety: all functions may be called from any thread; reopen_access_log() swaps the fd
// with dup2(), so a concurrent writer writes to the old file or the new one, never to a closed fd.

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace forklock {

enum class LogLevel { debug, info, warning, error, critical };

void set_log_level(LogLevel level) noexcept;
bool log_enabled(LogLevel level) noexcept;
void log_line(LogLevel level, std::string_view message) noexcept;

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) noexcept
{
    if (!log_enabled(level)) return;
    try {
        log_line(level, fmt::format(format, std::forward<Args>(args)...));
    } catch (...) {
        log_line(level, "(unformattable log message)");
    }
}

// "-" means stderr; "" means no access log. Throws std::system_error if the file can't be opened.
void open_access_log(const std::string& target);
void reopen_access_log() noexcept;
bool access_log_enabled() noexcept;

struct AccessRecord {
    std::string_view remote;
    std::string_view request_line; // "GET /x HTTP/1.1"
    int status = 0;
    std::size_t bytes = 0;
    std::string_view referer;
    std::string_view user_agent;
};
std::string format_access(const AccessRecord& record);
void log_access(const AccessRecord& record) noexcept;

} // namespace forklock
