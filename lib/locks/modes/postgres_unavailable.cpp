// postgres mode in a build without libpq (Debian libpq-dev): a clear refusal, so the rest of the
// project still builds without it (README's demo command).

#include <stdexcept>

#include "locks/modes/modes.h"

namespace forklock {

std::unique_ptr<LockTable::Impl> make_postgres_table(const LockTableOptions&)
{
    throw std::invalid_argument(
        "postgres mode: this forklock was built without libpq (apt-get install libpq-dev, then "
        "meson setup --reconfigure build)");
}

} // namespace forklock
