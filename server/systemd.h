#pragma once
// systemd's two protocols for a service, spoken directly (no libsystemd): both are documented
// as stable interfaces (sd_listen_fds(3), sd_notify(3)), each is a few system calls, and a
// forklock built on a machine without libsystemd-dev behaves the same.
//
// Socket activation: systemd (or systemd-socket-activate) binds, then execs the service with
// the sockets at fd 3.. and LISTEN_PID=<the service's pid>, LISTEN_FDS=<how many>. The master
// serves what it is given and binds nothing. forklock's workers accept on one socket, so exactly
// one is accepted: a TCP stream socket, already listening.
//
// Notification: with Type=notify, systemd sets NOTIFY_SOCKET to a unix datagram socket (a path,
// or "@name" in the abstract namespace); each datagram is "KEY=VALUE" lines: READY=1,
// RELOADING=1, STOPPING=1, STATUS=..., MAINPID=....
// Both read their variables once, in the master before it forks, and unset them: the workers
// (and anything they exec) neither serve nor notify for the master.

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "os/unique_fd.h"

namespace forklock {

// A LISTEN_* for this process that cannot be served: the message is one line for the operator.
class SocketActivationError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The socket systemd passed this process: nullopt when LISTEN_PID is unset or another process's
// (the variables are left alone then). Throws SocketActivationError when they are for this
// process but do not match: LISTEN_FDS not a count, not exactly one socket, or fd 3 not a
// listening TCP stream socket. Call once, in the master before any fork.
std::optional<UniqueFd> take_listen_socket();

class Notifier final {
public:
    // Reads NOTIFY_SOCKET and unsets it. Without it every call below does nothing. `main`: this
    // process speaks for the service from the start (a new master started by USR2 does not,
    // until it takes over).
    explicit Notifier(bool main = true);
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    bool enabled() const noexcept { return !address_.empty(); }
    // One datagram, "KEY=VALUE\n..." lines; a failure is logged once and otherwise ignored: the
    // server serves whether or not systemd hears it.
    void send(std::string_view message) noexcept;
    // RELOADING=1 with MONOTONIC_USEC (systemd 253's Type=notify-reload asks for it; 252 and
    // older ignore the field).
    void reloading(std::string_view status) noexcept;

    // Across a binary upgrade two masters run, and only one is systemd's main process: the old
    // one hands over when the new one serves, and the new one takes over with a message that
    // says MAINPID=; a master that does not speak for the service sends nothing.
    void hand_over() noexcept { main_ = false; }
    void take_over(std::string_view message) noexcept
    {
        main_ = true;
        send(message);
    }
    // NOTIFY_SOCKET as it was read, to pass on to a new master; "" without one.
    const std::string& variable() const noexcept { return variable_; }

private:
    std::string address_; // sun_path bytes; a leading '\0' for the abstract namespace
    std::string variable_;
    bool failed_ = false;
    bool main_ = true;
};

} // namespace forklock
