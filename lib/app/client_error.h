#pragma once
// What a client may read of a server-side failure. The log gets the call, its arguments (absolute
// paths included) and errno's text; an HTTP answer gets what failed and why, without the server's
// directories: the data directory, the lock files' directory, /dev/shm, a PostgreSQL socket's.
//
// Thread safety: pure functions.

#include <string>
#include <string_view>

namespace forklock {

// ENOSPC or EDQUOT: the file system (or the user's quota) is full. HTTP 507.
bool is_disk_full(int err) noexcept;

// Why, in a sentence a client can act on: for a full disk what to free, else errno's text.
std::string errno_reason(int err);

// `text` with every absolute path cut to its last component ("open(/srv/data/k) failed" becomes
// "open(k) failed"): a message from a library keeps what it names, not where it lives.
std::string strip_directories(std::string_view text);

} // namespace forklock
