#pragma once
// NamedSemaphore: one sem_open()ed POSIX semaphore, sem_close()d by the destructor.
//
// Shared across processes: yes, by name, and by inheritance: a child forked after the open shares
// the very same semaphore (the mapping of /dev/shm/sem.NAME is MAP_SHARED), even once the name is
// unlinked. Across threads: yes. A semaphore has no owner: if a process dies between wait() and
// post(), nothing posts for it (which is the multiprocessing.Lock failure this project shows).
//
// create_unlinked() makes the name with O_CREAT|O_EXCL, mode 0600, and unlinks it at once, so
// nothing is left in /dev/shm when the processes exit, kill -9 included. remove() unlinks a name
// left behind by a process killed between the two calls. create() and open() keep the name, for
// processes that meet by it (a named lock table): whoever decided the name is no longer used
// remove()s it; the destructor never does.

#include <ctime>
#include <optional>
#include <semaphore.h>
#include <string>

namespace forklock {

class NamedSemaphore {
public:
    // Throws std::system_error("sem_open(\"/name\", O_CREAT|O_EXCL, 0600, 0) failed: ...").
    static NamedSemaphore create_unlinked(const std::string& name, unsigned value = 0);
    // create: O_CREAT|O_EXCL, 0600, the name kept. open: an existing name (no O_CREAT). Both throw
    // std::system_error with the call and its arguments.
    static NamedSemaphore create(const std::string& name, unsigned value = 0);
    static NamedSemaphore open(const std::string& name);
    // Unlinks `name`; true if it existed. Never throws.
    static bool remove(const std::string& name) noexcept;

    NamedSemaphore(NamedSemaphore&& other) noexcept;
    NamedSemaphore& operator=(NamedSemaphore&& other) noexcept;
    NamedSemaphore(const NamedSemaphore&) = delete;
    NamedSemaphore& operator=(const NamedSemaphore&) = delete;
    ~NamedSemaphore();

    // wait_until: blocks until the count can be decremented or the CLOCK_MONOTONIC deadline passes
    // (false). EINTR is retried.
    bool wait_until(const timespec& monotonic_deadline);
    [[nodiscard]] bool try_wait();
    void post();

private:
    explicit NamedSemaphore(sem_t* sem) : sem_(sem) {}
    void close() noexcept;
    sem_t* sem_ = nullptr;
};

} // namespace forklock
