#include "locks/table/named_table.h"

#include <dirent.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <exception>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include <forklock/lock_errors.h>
#include "os/current_pid.h"
#include "os/named_semaphore.h"
#include "os/os_error.h"
#include "os/shared_memory_object.h"

namespace forklock {
namespace {

// Page 0 of a named object. Read by an opener only under its LOCK_SH, after the magic.
struct NamedHeader {
    std::atomic<std::uint64_t> magic; // kReady once the creator laid everything out
    std::uint32_t version;            // kLayoutVersion: what this binary lays out
    std::uint32_t mode;               // LockMode
    std::uint64_t capacity;
    std::uint64_t slot_bytes;
    std::uint64_t wait_bytes;
    std::int32_t creator_pid;
    std::int64_t created_unix_s;
    // The creator's pid namespace (the inode of /proc/self/ns/pid, 0 if unknown). Lock words hold
    // pids, and a partition's waiter takes over from a pid that is gone (pid_spin_lock.h): a
    // process of another namespace would see a live holder as gone.
    std::uint64_t pid_namespace;
};
static_assert(std::is_standard_layout_v<NamedHeader>);

constexpr std::uint64_t kReady = 0x6b636f6c6b726f66; // "forklock"
constexpr std::uint32_t kLayoutVersion = 3; // 3: slots carry fencing tokens and leases
// How often an opener starts again when the name changed under it, or met a table being laid
// out or cleared by someone else, before it gives up.
constexpr int kAttempts = 200;
constexpr auto kRetryPause = std::chrono::milliseconds(5);
// A creator holds no lock between its O_EXCL create and its LOCK_EX: an opener that finds a
// half-made object nobody locks waits this many pauses before it calls the object stale.
constexpr int kHalfMadeTries = 10;

std::uint64_t pid_namespace()
{
    struct stat st {};
    return ::stat("/proc/self/ns/pid", &st) == 0 ? st.st_ino : 0;
}

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }
std::size_t round_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

struct Layout {
    std::size_t waits, slots, total;
};
Layout layout_of(std::size_t slot_bytes, std::size_t wait_bytes)
{
    const std::size_t page = page_size();
    const std::size_t slots = page + round_up(wait_bytes, page);
    return {page, slots, slots + slot_bytes};
}

// remove_names: the semaphores first, then the object, so a creator (who needs the object's name
// free) never meets a semaphore of the old table. The caller holds LOCK_EX on the named object.
void remove_names(const std::string& table_name)
{
    const std::string prefix = "sem.forklock-" + table_name + ".";
    if (DIR* dir = ::opendir("/dev/shm")) {
        while (const dirent* e = ::readdir(dir)) {
            const std::string entry = e->d_name;
            if (entry.size() > prefix.size() && entry.compare(0, prefix.size(), prefix) == 0 &&
                entry.find_first_not_of("0123456789", prefix.size()) == std::string::npos)
                // Appended, not "/" + substr(): gcc 12 -O3 warns (-Wrestrict) inside that operator+.
                NamedSemaphore::remove(std::string("/").append(entry, 4));
        }
        ::closedir(dir);
    }
    SharedMemoryObject::remove(shm_name_of(table_name));
}

} // namespace

struct TableName::State {
    SharedMemoryObject object;
    MemoryRegion header;
    std::string table_name;
    pid_t opener = current_pid();
    bool published = false;

    NamedHeader& fields() { return *static_cast<NamedHeader*>(header.data()); }
};

namespace {

std::string layout_text(std::uint32_t version, std::uint32_t mode, std::uint64_t capacity)
{
    return fmt::format("layout {}, mode {}, capacity {}", version,
                       to_string(static_cast<LockMode>(mode)), capacity);
}

// fresh: lays out the header of an object this process created and holds LOCK_EX on.
TableMemory fresh(SharedMemoryObject object, const LockTableOptions& o, std::size_t slot_bytes,
                  std::size_t wait_bytes, TableOrigin origin)
{
    const Layout l = layout_of(slot_bytes, wait_bytes);
    object.resize(l.total);
    MemoryRegion header = object.map(page_size(), 0);
    auto state = std::make_unique<TableName::State>(
        TableName::State{std::move(object), std::move(header), o.name});
    NamedHeader& h = state->fields();
    h.version = kLayoutVersion;
    h.mode = static_cast<std::uint32_t>(o.mode);
    h.capacity = o.capacity;
    h.slot_bytes = slot_bytes;
    h.wait_bytes = wait_bytes;
    h.creator_pid = current_pid();
    h.created_unix_s = std::time(nullptr);
    h.pid_namespace = pid_namespace();
    MemoryRegion waits = state->object.map(wait_bytes, static_cast<off_t>(l.waits));
    MemoryRegion slots = state->object.map(slot_bytes, static_cast<off_t>(l.slots));
    return {std::move(slots), std::move(waits), false, origin,
            std::make_unique<TableName>(std::move(state))};
}

// join: maps a table some live user holds, if it is complete and options may join it; nullopt
// for one still being laid out (or left half done by a dead creator while others wait too).
std::optional<TableMemory> join(SharedMemoryObject object, const LockTableOptions& o,
                                std::size_t slot_bytes, std::size_t wait_bytes)
{
    const Layout l = layout_of(slot_bytes, wait_bytes);
    if (object.size() < page_size()) return std::nullopt;
    MemoryRegion header = object.map(page_size(), 0);
    const auto& h = *static_cast<const NamedHeader*>(header.data());
    if (h.magic.load(std::memory_order_acquire) != kReady) return std::nullopt;
    const std::string who = fmt::format("lock table '{}' is in use by a live server (made by pid "
                                        "{})",
                                        o.name, h.creator_pid);
    if (h.version != kLayoutVersion || h.mode != static_cast<std::uint32_t>(o.mode) ||
        h.capacity != o.capacity || h.slot_bytes != slot_bytes || h.wait_bytes != wait_bytes ||
        object.size() < l.total)
        throw LockNameError(fmt::format(
            "{} with {}; this one needs {}: stop that server or pick another name", who,
            layout_text(h.version, h.mode, h.capacity),
            layout_text(kLayoutVersion, static_cast<std::uint32_t>(o.mode), o.capacity)));
    if (h.pid_namespace != pid_namespace())
        throw LockNameError(fmt::format("{} in another pid namespace, where pids name other "
                                        "processes: its locks cannot be shared from here",
                                        who));
    if (!o.share)
        throw LockNameError(
            fmt::format("{}: share it on purpose (--lock-share) or pick another name", who));
    MemoryRegion waits = object.map(wait_bytes, static_cast<off_t>(l.waits));
    MemoryRegion slots = object.map(slot_bytes, static_cast<off_t>(l.slots));
    auto state = std::make_unique<TableName::State>(
        TableName::State{std::move(object), std::move(header), o.name});
    state->published = true;
    return TableMemory{std::move(slots), std::move(waits), true, TableOrigin::joined,
                       std::make_unique<TableName>(std::move(state))};
}

// half_made: whether the object's header is not complete (no page yet, or no magic).
bool half_made(const SharedMemoryObject& object)
{
    if (object.size() < page_size()) return true;
    const MemoryRegion header = object.map(page_size(), 0);
    return static_cast<const NamedHeader*>(header.data())->magic.load(std::memory_order_acquire) !=
           kReady;
}

// between_locks: whether an object nobody holds a flock on is a live creator's, caught between
// its LOCK_EX and its LOCK_SH (flock(2): a conversion drops the old lock before it takes the
// new one). Then it is complete and its creator runs; a stale object's creator is dead.
bool between_locks(const SharedMemoryObject& object)
{
    if (object.size() < page_size()) return false;
    const MemoryRegion header = object.map(page_size(), 0);
    const auto& h = *static_cast<const NamedHeader*>(header.data());
    if (h.magic.load(std::memory_order_acquire) != kReady || h.creator_pid <= 0) return false;
    return ::kill(h.creator_pid, 0) == 0 || errno == EPERM;
}

} // namespace

TableMemory anonymous_table_memory(std::size_t slot_bytes, std::size_t wait_bytes,
                                   MemoryRegion::Sharing sharing)
{
    return {MemoryRegion(slot_bytes, sharing), MemoryRegion(wait_bytes, sharing), false,
            TableOrigin::anonymous, nullptr};
}

TableMemory named_table_memory(const LockTableOptions& o, std::size_t slot_bytes,
                               std::size_t wait_bytes)
{
    const std::string shm = shm_name_of(o.name);
    bool stale = false;
    int half_made_seen = 0;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
        if (auto created = SharedMemoryObject::create(shm)) {
            created->lock_exclusive(); // waits only for an opener that took it for stale
            if (!created->still_named()) continue;
            return fresh(std::move(*created), o, slot_bytes, wait_bytes,
                         stale ? TableOrigin::rebuilt : TableOrigin::created);
        }
        auto existing = SharedMemoryObject::open(shm);
        if (!existing) continue; // its last user removed it just now
        if (existing->try_lock_exclusive()) {
            // Nobody holds it: every user died without closing, or a live creator is between its
            // create and its LOCK_EX, or between its LOCK_EX and its LOCK_SH. Only the header is
            // read, to tell those apart; never the table.
            if (!existing->still_named()) continue;
            if (between_locks(*existing) ||
                (half_made(*existing) && ++half_made_seen < kHalfMadeTries)) {
                std::this_thread::sleep_for(kRetryPause);
                continue;
            }
            remove_names(o.name);
            stale = true;
            continue;
        }
        existing->lock_shared();
        if (!existing->still_named()) continue;
        if (auto joined = join(std::move(*existing), o, slot_bytes, wait_bytes))
            return std::move(*joined);
        std::this_thread::sleep_for(kRetryPause);
    }
    throw LockNameError(fmt::format("lock table '{}': {} kept changing or stayed half made over {} "
                                    "attempts",
                                    o.name, "/dev/shm" + shm, kAttempts));
}

void publish(TableMemory& memory)
{
    if (memory.name) memory.name->publish();
}

std::string shm_name_of(const std::string& table_name) { return "/forklock-" + table_name; }

std::string semaphore_name_of(const std::string& table_name, std::size_t index)
{
    return fmt::format("/forklock-{}.{}", table_name, index);
}

TableName::TableName(std::unique_ptr<State> state) : state_(std::move(state)) {}

void TableName::publish()
{
    if (state_->published) return;
    state_->fields().magic.store(kReady, std::memory_order_release);
    state_->object.lock_shared(); // down from LOCK_EX: openers waiting in lock_shared() come in
    state_->published = true;
}

TableName::~TableName()
{
    if (current_pid() != state_->opener) return; // the inherited fd is the opener's lock
    try {
        // The last user (or a creator that failed before publish) removes the names.
        if (state_->object.try_lock_exclusive() && state_->object.still_named())
            remove_names(state_->table_name);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "forklock: lock table '%s': %s\n", state_->table_name.c_str(),
                     e.what());
    }
}

} // namespace forklock
