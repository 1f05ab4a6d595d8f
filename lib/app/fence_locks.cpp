#include "app/fence_locks.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>

#include "locks/primitives/pthread_mutex.h"
#include "os/os_error.h"
#include "os/unique_fd.h"

namespace forklock {
namespace {

constexpr std::uint64_t kReady = 0x65636e6566636b6c; // "lckfence"
constexpr std::uint32_t kLayoutVersion = 2;
constexpr std::size_t kBootIdSize = 40;
constexpr std::size_t kHeaderBytes = 4096;

struct Header {
    std::atomic<std::uint64_t> magic; // kReady once laid out
    std::uint32_t version;
    std::uint32_t stripes;
    char boot_id[kBootIdSize]; // the boot that laid it out: an older boot's mutexes are reset
};

struct alignas(64) Stripe { // one cache line each: stripes taken by other CPUs do not share one
    pthread_mutex_t mutex;
    std::atomic<std::uint64_t> generation; // writes made under the mutex (fence_locks.h)
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free); // shared across processes
static_assert(sizeof(Header) <= kHeaderBytes);
static_assert(sizeof(Stripe) == 64);

constexpr std::size_t kMapBytes = kHeaderBytes + FenceLocks::kStripes * sizeof(Stripe);

std::string boot_id()
{
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string id;
    std::getline(in, id);
    return id.substr(0, kBootIdSize - 1);
}

Header* header(void* map) { return static_cast<Header*>(map); }
Stripe* stripes(void* map) { return reinterpret_cast<Stripe*>(static_cast<char*>(map) + kHeaderBytes); }

// Under the caller's LOCK_EX on the file: no other process reads or lays it out meanwhile.
void lay_out_if_needed(void* map)
{
    Header* h = header(map);
    const std::string boot = boot_id();
    if (h->magic.load(std::memory_order_acquire) == kReady && h->version == kLayoutVersion &&
        h->stripes == FenceLocks::kStripes && std::strncmp(h->boot_id, boot.c_str(), kBootIdSize) == 0)
        return;
    h->magic.store(0, std::memory_order_relaxed);
    for (std::size_t i = 0; i < FenceLocks::kStripes; ++i) {
        init_mutex(&stripes(map)[i].mutex, MutexKind::shared_robust);
        stripes(map)[i].generation.store(0, std::memory_order_relaxed);
    }
    h->version = kLayoutVersion;
    h->stripes = FenceLocks::kStripes;
    std::memset(h->boot_id, 0, kBootIdSize);
    std::memcpy(h->boot_id, boot.data(), boot.size());
    h->magic.store(kReady, std::memory_order_release);
}

class FlockGuard {
public:
    explicit FlockGuard(int fd) : fd_(fd)
    {
        while (::flock(fd_, LOCK_EX) != 0)
            if (errno != EINTR) throw os_error(errno, "flock({}, LOCK_EX)", FenceLocks::kFileName);
    }
    ~FlockGuard() { ::flock(fd_, LOCK_UN); }
    FlockGuard(const FlockGuard&) = delete;
    FlockGuard& operator=(const FlockGuard&) = delete;

private:
    int fd_;
};

} // namespace

FenceLocks::FenceLocks(int dir_fd)
{
    UniqueFd fd(::openat(dir_fd, kFileName, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw os_error(errno, "open({}, O_CREAT)", kFileName);
    FlockGuard locked(fd.get());
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw os_error(errno, "fstat({})", kFileName);
    if (!S_ISREG(st.st_mode)) throw os_error(EINVAL, "{} is not a regular file", kFileName);
    if (static_cast<std::size_t>(st.st_size) < kMapBytes) {
        // Blocks reserved now: a page of a sparse file faulted in on a full disk is a SIGBUS.
        if (int err = ::posix_fallocate(fd.get(), 0, kMapBytes); err != 0)
            throw os_error(err, "posix_fallocate({}, {} bytes)", kFileName, kMapBytes);
    }
    map_ = ::mmap(nullptr, kMapBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (map_ == MAP_FAILED) {
        map_ = nullptr;
        throw os_error(errno, "mmap({}, MAP_SHARED)", kFileName);
    }
    lay_out_if_needed(map_);
}

FenceLocks::~FenceLocks()
{
    if (map_) ::munmap(map_, kMapBytes);
}

std::size_t FenceLocks::stripe_of(std::string_view key) noexcept
{
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ULL;
    return static_cast<std::size_t>(h % kStripes);
}

pthread_mutex_t* FenceLocks::mutex(std::size_t stripe) const noexcept
{
    return &stripes(map_)[stripe].mutex;
}

std::atomic<std::uint64_t>* FenceLocks::generation_of(std::size_t stripe) const noexcept
{
    return &stripes(map_)[stripe].generation;
}

std::uint64_t FenceLocks::generation(std::string_view key) const noexcept
{
    return generation_of(stripe_of(key))->load(std::memory_order_acquire);
}

FenceLocks::Guard::Guard(const FenceLocks& locks, std::string_view key)
    : m_(locks.mutex(stripe_of(key))), generation_(locks.generation_of(stripe_of(key)))
{
    // A holder that died left the counter file consistent (one pwrite of a checked slot).
    if (lock_mutex(m_) == MutexResult::owner_died) {
        make_consistent(m_);
        took_over_ = true;
    }
}

// Release: a reader that loads the new generation (acquire) and then reads the file sees what was
// written under this Guard.
FenceLocks::Guard::~Guard()
{
    generation_->fetch_add(1, std::memory_order_release);
    unlock_mutex(m_);
}

std::uint64_t FenceLocks::Guard::generation() const noexcept
{
    return generation_->load(std::memory_order_relaxed);
}

} // namespace forklock
