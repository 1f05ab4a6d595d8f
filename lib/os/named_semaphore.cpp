#include "os/named_semaphore.h"

#include <fcntl.h>

#include <utility>

#include "os/os_error.h"

namespace forklock {

NamedSemaphore NamedSemaphore::create_unlinked(const std::string& name, unsigned value)
{
    sem_t* sem = ::sem_open(name.c_str(), O_CREAT | O_EXCL, 0600, value);
    if (sem == SEM_FAILED)
        throw os_error(errno, "sem_open(\"{}\", O_CREAT|O_EXCL, 0600, {})", name, value);
    if (::sem_unlink(name.c_str()) != 0) {
        const int err = errno;
        ::sem_close(sem);
        throw os_error(err, "sem_unlink(\"{}\")", name);
    }
    return NamedSemaphore(sem);
}

NamedSemaphore NamedSemaphore::create(const std::string& name, unsigned value)
{
    sem_t* sem = ::sem_open(name.c_str(), O_CREAT | O_EXCL, 0600, value);
    if (sem == SEM_FAILED)
        throw os_error(errno, "sem_open(\"{}\", O_CREAT|O_EXCL, 0600, {})", name, value);
    return NamedSemaphore(sem);
}

NamedSemaphore NamedSemaphore::open(const std::string& name)
{
    sem_t* sem = ::sem_open(name.c_str(), 0);
    if (sem == SEM_FAILED) throw os_error(errno, "sem_open(\"{}\", 0)", name);
    return NamedSemaphore(sem);
}

bool NamedSemaphore::remove(const std::string& name) noexcept
{
    return ::sem_unlink(name.c_str()) == 0;
}

NamedSemaphore::NamedSemaphore(NamedSemaphore&& other) noexcept
    : sem_(std::exchange(other.sem_, nullptr))
{
}

NamedSemaphore& NamedSemaphore::operator=(NamedSemaphore&& other) noexcept
{
    if (this != &other) {
        close();
        sem_ = std::exchange(other.sem_, nullptr);
    }
    return *this;
}

NamedSemaphore::~NamedSemaphore() { close(); }

void NamedSemaphore::close() noexcept
{
    if (sem_ && ::sem_close(sem_) != 0) log_os_error(errno, "sem_close()");
    sem_ = nullptr;
}

bool NamedSemaphore::wait_until(const timespec& deadline)
{
    for (;;) {
        if (::sem_clockwait(sem_, CLOCK_MONOTONIC, &deadline) == 0) return true;
        if (errno == ETIMEDOUT) return false;
        if (errno != EINTR) throw os_error(errno, "sem_clockwait()");
    }
}

bool NamedSemaphore::try_wait()
{
    for (;;) {
        if (::sem_trywait(sem_) == 0) return true;
        if (errno == EAGAIN) return false;
        if (errno != EINTR) throw os_error(errno, "sem_trywait()");
    }
}

void NamedSemaphore::post()
{
    if (::sem_post(sem_) != 0) throw os_error(errno, "sem_post()");
}

} // namespace forklock
