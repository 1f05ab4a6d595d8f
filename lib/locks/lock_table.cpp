#include <forklock/lock_table.h>

#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "locks/modes/modes.h"
#include "locks/modes/table_impl.h"

namespace forklock {

namespace {
std::unique_ptr<LockTable::Impl> make_impl(const LockTableOptions& o)
{
    if (o.capacity == 0 || o.capacity > LockTable::kMaxCapacity)
        throw std::invalid_argument(fmt::format("lock table capacity must be 1..{}, not {}",
                                                LockTable::kMaxCapacity, o.capacity));
    if (!o.name.empty()) {
        if (auto problem = LockTable::name_problem(o.name); !problem.empty())
            throw std::invalid_argument(problem);
        if (o.mode == LockMode::none || o.mode == LockMode::thread)
            throw std::invalid_argument(
                fmt::format("a {} table lives in private memory and cannot be found by name",
                            to_string(o.mode)));
    }
    return make_table_impl(o);
}
} // namespace

LockTable::LockTable(const LockTableOptions& options) : impl_(make_impl(options)) {}
LockTable::~LockTable() = default;

LockMode LockTable::mode() const noexcept { return impl_->options.mode; }
const LockTableOptions& LockTable::options() const noexcept { return impl_->options; }
TableOrigin LockTable::origin() const noexcept { return impl_->origin; }

std::string LockTable::name_problem(std::string_view name)
{
    if (name.empty() || name.size() > kMaxNameLength)
        return fmt::format("a lock table name is 1 to {} characters, not {}", kMaxNameLength,
                           name.size());
    for (const char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return fmt::format("a lock table name is made of A-Z a-z 0-9 _ -, and '{}' has '{}'",
                               name, c);
    return "";
}

KeyGuard LockTable::lock(std::string_view key) { return impl_->acquire(*this, key, kNoTimeout); }
KeyGuard LockTable::try_lock(std::string_view key)
{
    return impl_->acquire(*this, key, std::chrono::nanoseconds(0));
}
KeyGuard LockTable::lock_for(std::string_view key, std::chrono::nanoseconds timeout)
{
    return impl_->acquire(*this, key, timeout);
}

bool LockTable::unlock(KeyGuard& g) noexcept { return impl_->unlock(g); }
bool LockTable::still_held(const KeyGuard& g) const noexcept { return impl_->still_held(g); }
std::vector<ServerLock> LockTable::server_locks(std::chrono::milliseconds timeout) const
{
    return impl_->server_locks(timeout);
}

std::size_t LockTable::release_owned_by(pid_t pid) { return impl_->release_owned_by(pid); }
pid_t LockTable::owner(std::string_view key) const { return impl_->owner(key); }
TableStats LockTable::stats() const { return impl_->stats(); }
std::vector<KeyStats> LockTable::key_stats(std::size_t limit) const
{
    return impl_->key_stats(limit);
}

KeyGuard::KeyGuard(KeyGuard&& o) noexcept
    : table_(std::exchange(o.table_, nullptr)), slot_(std::exchange(o.slot_, nullptr)),
      fd_(std::move(o.fd_)), lease_(o.lease_), waited_(o.waited_),
      recovered_from_(o.recovered_from_)
{
}

KeyGuard& KeyGuard::operator=(KeyGuard&& o) noexcept
{
    if (this != &o) {
        unlock();
        table_ = std::exchange(o.table_, nullptr);
        slot_ = std::exchange(o.slot_, nullptr);
        fd_ = std::move(o.fd_);
        lease_ = o.lease_;
        waited_ = o.waited_;
        recovered_from_ = o.recovered_from_;
    }
    return *this;
}

KeyGuard::~KeyGuard() { unlock(); }

bool KeyGuard::unlock() noexcept
{
    if (!table_) return true;
    const bool held = table_->unlock(*this);
    table_ = nullptr;
    slot_ = nullptr;
    return held;
}

bool KeyGuard::still_held() const noexcept
{
    return table_ != nullptr && (lease_ == 0 || table_->still_held(*this));
}

} // namespace forklock
