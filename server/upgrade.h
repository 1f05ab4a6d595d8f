#pragma once
// The exec side of a binary upgrade (nginx's USR2): the old master forks and execs the binary
// with its listening socket inherited, as systemd's socket activation passes one (fd 3,
// LISTEN_FDS=1, LISTEN_PID=the new master's pid: systemd.h's take_listen_socket() reads it), and
// the write end of a pipe in FORKLOCK_UPGRADE_FD. The new master writes one byte to that pipe
// once every worker of its own serves, and closes it: that is how the old master learns the new
// one is ready (its exit, reaped by the old master, is how it learns it failed).
// NOTIFY_SOCKET is passed on, so the new master can tell systemd MAINPID= when it takes over.

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "os/unique_fd.h"

namespace forklock {

inline constexpr const char* kUpgradeFdVariable = "FORKLOCK_UPGRADE_FD";

// What a master started by USR2 got from the one it replaces.
struct UpgradeHandoff {
    UniqueFd ready;       // write one byte when every worker serves, then close
    pid_t old_master = 0; // its parent, the master it replaces
};

// The handoff from FORKLOCK_UPGRADE_FD (unset here), or nullopt when this process was not
// started by a USR2. Call once, in main(), before any fork.
std::optional<UpgradeHandoff> take_upgrade_handoff();

struct NewMaster {
    pid_t pid = -1;
    UniqueFd ready; // read end, non-blocking: one byte when it serves, EOF when it is gone
};

// start_new_master: fork(), then exec `binary` with `args` in the child, `listen_fd` as its fd 3.
// `notify_socket` (systemd's NOTIFY_SOCKET as it was, or "") is set again for it. Throws
// std::system_error when the pipe or fork() fails; a failed exec makes the child exit 127 (with
// one line on stderr), which the caller reaps as any failed start. The caller must be single
// threaded (the child calls setenv() before exec).
NewMaster start_new_master(const std::filesystem::path& binary,
                           const std::vector<std::string>& args, int listen_fd,
                           const std::string& notify_socket);

// The binary USR2 runs, from this process's argv[0], as nginx does: made absolute when it holds
// a '/' (symlinks kept, so a link switched to a new release, or a file installed over the old one,
// is what runs), left as it is when it names a program on PATH (looked up again at the upgrade);
// /proc/self/exe when argv[0] is empty.
std::filesystem::path own_binary(const char* argv0);

} // namespace forklock
