// Act 3's PostgreSQL rows in a demo built without libpq (Debian libpq-dev): the throwaway
// cluster needs it (PQping), so the rows are skipped and say how to get them.
#include "postgres_rows.h"

namespace forklock::demo {

PostgresRows run_postgres_rows(const std::filesystem::path&, const RaceSizes&, Progress&, int, int)
{
    return {"this demo was built without libpq (apt-get install libpq-dev postgresql-15, then "
            "meson setup --reconfigure build)",
            {},
            {},
            {}};
}

PostgresRows run_postgres_pause(const std::filesystem::path& server, Progress& progress,
                                const std::string&)
{
    return run_postgres_rows(server, RaceSizes{}, progress, 0, 0);
}

} // namespace forklock::demo
