#pragma once
// Progress: one status line on stderr, rewritten in place; silent unless stderr is a terminal,
// so pipes, logs and --json consumers never see it.

#include <string_view>

namespace forklock::demo {

class Progress final {
public:
    explicit Progress(bool enabled) noexcept : enabled_(enabled) {}
    ~Progress() { clear(); }
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void show(std::string_view line) noexcept;
    void clear() noexcept;

    // True when stderr is a terminal.
    static bool stderr_is_terminal() noexcept;

private:
    bool enabled_;
    bool shown_ = false;
};

} // namespace forklock::demo
