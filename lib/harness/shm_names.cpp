#include "harness/shm_names.h"

#include <cstdio>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "harness/child.h"

namespace forklock::harness {

int semaphore_names_of(const std::set<pid_t>& pids)
{
    int count = 0;
    std::error_code error; // a name may vanish while we look
    for (std::filesystem::directory_iterator it("/dev/shm", error), end; !error && it != end;
         it.increment(error)) {
        const std::string name = it->path().filename().string();
        int pid = 0;
        if (std::sscanf(name.c_str(), "sem.forklock.%d.", &pid) == 1 && pids.count(pid) != 0)
            ++count;
    }
    return count;
}

int own_semaphore_names()
{
    std::set<pid_t> mine = forked_pids();
    mine.insert(::getpid());
    return semaphore_names_of(mine);
}

} // namespace forklock::harness
