#pragma once
// Ctrl-C of the demo: the handler only records it; every wait in the demo is a poll() slice that
// checks interrupted() and throws Interrupted, so RAII unwinds and stops the servers it started.

#include <stdexcept>
#include <string>

namespace forklock::demo {

struct Interrupted : std::runtime_error {
    Interrupted() : std::runtime_error("interrupted") {}
};

// failure_of: runs one row's `body`; the message of a std::exception it threw, or "" if none.
// Interrupted is not a failure of the row: it passes through, and the demo stops.
template <typename Body>
std::string failure_of(Body&& body)
{
    try {
        body();
    } catch (const Interrupted&) {
        throw;
    } catch (const std::exception& error) {
        return error.what();
    }
    return {};
}

// Installs SIGINT, SIGTERM and SIGHUP handlers that set the flag. A second signal while the
// demo is still cleaning up kills every registered server group at once and exits 130.
void install_interrupt_handlers();
[[nodiscard]] bool interrupted() noexcept;
void throw_if_interrupted();

// Process groups the second-signal path must kill (at most 8 at a time; the demo runs one).
void register_server_group(int pgid) noexcept;
void unregister_server_group(int pgid) noexcept;

} // namespace forklock::demo
