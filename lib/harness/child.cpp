#include "harness/child.h"

namespace forklock::harness {
namespace {
std::set<pid_t>& pids()
{
    static std::set<pid_t> forked;
    return forked;
}
} // namespace

const std::set<pid_t>& forked_pids() { return pids(); }
void remember_forked(pid_t pid) { pids().insert(pid); }

} // namespace forklock::harness
