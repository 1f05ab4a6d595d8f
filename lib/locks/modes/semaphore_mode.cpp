#include "locks/modes/semaphore_mode.h"

#include <dirent.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "locks/table/named_table.h"

namespace forklock {
namespace {

// A named table's semaphores (named_table.h): made by its creator, which holds the object
// exclusively, so a name already there is a leftover of a dead table's and is replaced; opened
// by everyone else. Removed by the table's last user.
std::vector<NamedSemaphore> named_semaphores(const std::string& table, std::size_t n, bool attach)
{
    std::vector<NamedSemaphore> sems;
    sems.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::string name = semaphore_name_of(table, i);
        if (attach) {
            sems.push_back(NamedSemaphore::open(name));
            continue;
        }
        NamedSemaphore::remove(name);
        sems.push_back(NamedSemaphore::create(name));
    }
    return sems;
}

// Names left in /dev/shm by a creator killed between sem_open and sem_unlink (microseconds, but
// kill -9 finds every window): forklock.PID.* whose PID no longer runs.
void remove_stale_semaphores()
{
    DIR* dir = ::opendir("/dev/shm");
    if (!dir) return;
    while (const dirent* e = ::readdir(dir)) {
        int pid = 0;
        if (std::sscanf(e->d_name, "sem.forklock.%d.", &pid) == 1 && pid > 0 &&
            ::kill(pid, 0) != 0 && errno == ESRCH)
            NamedSemaphore::remove(std::string("/") + (e->d_name + 4));
    }
    ::closedir(dir);
}

std::vector<NamedSemaphore> make_semaphores(std::size_t n)
{
    static std::atomic<unsigned> tables{0};
    remove_stale_semaphores();
    const unsigned table = tables.fetch_add(1);
    std::vector<NamedSemaphore> sems;
    sems.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        sems.push_back(NamedSemaphore::create_unlinked(
            fmt::format("/forklock.{}.{}.{}", current_pid(), table, i)));
    return sems;
}

} // namespace

std::vector<NamedSemaphore> slot_semaphores(const LockTableOptions& o, bool attach)
{
    return o.name.empty() ? make_semaphores(o.capacity)
                          : named_semaphores(o.name, o.capacity, attach);
}

} // namespace forklock
