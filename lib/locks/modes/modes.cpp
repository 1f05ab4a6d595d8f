#include "locks/modes/modes.h"

#include "locks/modes/table_impl.h"

#include <stdexcept>

#include <fmt/format.h>

namespace forklock {

std::unique_ptr<LockTable::Impl> make_table_impl(const LockTableOptions& o)
{
    switch (o.mode) {
    case LockMode::none: return make_none_table(o);
    case LockMode::thread: return make_thread_table(o);
    case LockMode::semaphore: return make_semaphore_table(o);
    case LockMode::mutex: return make_mutex_table(o);
    case LockMode::flock: return make_flock_table(o);
    case LockMode::postgres: return make_postgres_table(o);
    }
    throw std::invalid_argument(fmt::format("unknown lock mode {}", static_cast<int>(o.mode)));
}

} // namespace forklock
