#include "harness/shm_names.h"

#include <cstdio>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "harness/child.h"

namespace forklock::harness {

namespace {

template <typename Match>
int count_shm_entries(Match match)
{
    int count = 0;
    std::error_code error; // a name may vanish while we look
    for (std::filesystem::directory_iterator it("/dev/shm", error), end; !error && it != end;
         it.increment(error))
        count += match(it->path().filename().string()) ? 1 : 0;
    return count;
}

} // namespace

int semaphore_names_of(const std::set<pid_t>& pids)
{
    return count_shm_entries([&](const std::string& name) {
        int pid = 0;
        return std::sscanf(name.c_str(), "sem.forklock.%d.", &pid) == 1 && pids.count(pid) != 0;
    });
}

int named_table_entries(const std::string& name)
{
    const std::string object = "forklock-" + name;
    const std::string semaphores = "sem.forklock-" + name + ".";
    return count_shm_entries(
        [&](const std::string& entry) { return entry == object || entry.starts_with(semaphores); });
}

int own_semaphore_names()
{
    std::set<pid_t> mine = forked_pids();
    mine.insert(::getpid());
    return semaphore_names_of(mine);
}

} // namespace forklock::harness
