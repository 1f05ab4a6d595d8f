#pragma once
// Listener: the one listening socket the master binds before fork. Every worker thread accepts on
// the inherited fd, so there is no SO_REUSEPORT: the kernel hands each connection to one of the
// accept() calls racing for it.

#include <cstdint>

#include "app/options.h"
#include "os/unique_fd.h"

namespace forklock {

// accept_backlog: connections the kernel has established on listening socket `fd` that no
// accept() has taken yet (Linux reports it in TCP_INFO's tcpi_unacked for a listener: `ss -l`
// shows it as Recv-Q). 0 when the call fails. Any thread, no side effects.
[[nodiscard]] std::uint32_t accept_backlog(int fd) noexcept;

class Listener final {
public:
    // Binds and listens (non-blocking, close-on-exec). Throws std::system_error.
    explicit Listener(const BindAddress& address);
    // Serves a socket already bound and listening (systemd's, systemd.h): made non-blocking and
    // close-on-exec here. Throws std::system_error.
    explicit Listener(UniqueFd listening);

    int fd() const noexcept { return fd_.get(); }
    // The address actually bound: the real port when 0 was asked for.
    const BindAddress& address() const noexcept { return bound_; }
    void close() noexcept { fd_.reset(); }

private:
    UniqueFd fd_;
    BindAddress bound_;
};

} // namespace forklock
