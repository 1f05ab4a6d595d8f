#pragma once
// The lock library's own errors. OS failures are std::system_error (os/os_error.h); these two are
// the ones a caller is expected to handle.

#include <stdexcept>

#include <forklock/export.h>

namespace forklock {

// InvalidKeyError: the key is empty or longer than LockTable::kMaxKeyLength. The caller's fault:
// answer 400, do not retry.
class FORKLOCK_API InvalidKeyError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

// TableFullError: every slot the key could use is held or waited on. It can come before
// `capacity` keys are held, because a key may only use slots of its own partition and the free
// pool. The caller should fail the request (HTTP 503), not retry hot.
class FORKLOCK_API TableFullError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// LockNameError: a named table (LockTableOptions::name) is in use by live processes this table
// may not join: share is false, or they laid it out differently (another layout version, mode or
// capacity). Nothing was changed; the caller should stop (the server exits with code 2).
class FORKLOCK_API LockNameError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// LockServerError: the server that holds the locks (postgres mode) could not be reached, refused
// the connection or lost it. Not the caller's fault and not contention: answer 503; the next
// call connects again.
class FORKLOCK_API LockServerError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// LockLostError: the lock server lost the session while it held a key (postgres mode), found by
// KeyGuard::still_held() or unlock(). The server released the key when the session ended, so
// another holder may already be inside: the holder must not write (or, when unlock() found it,
// must not acknowledge what it wrote). Thrown by the caller that found it (the API, HTTP 503); a
// LockServerError, so code that knows only that one answers 503 too.
class FORKLOCK_API LockLostError : public LockServerError {
public:
    using LockServerError::LockServerError;
};

} // namespace forklock
