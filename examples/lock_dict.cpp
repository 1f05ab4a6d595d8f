// lock_dict: the seed's LockDict across fork(), against the installed library. The parent makes
// one table (mutex mode: robust process-shared mutexes in shared memory), forks kChildren
// children, and each adds 1 to a counter file kIncrements times, reading and writing it under
// table.lock("counter"). Without the lock the children would overwrite each other's updates.
// Exit code 0 when the file holds kChildren * kIncrements.
//
// Build against an installed forklock:
//   c++ -std=c++20 lock_dict.cpp $(pkg-config --cflags --libs forklock) -o lock_dict

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <forklock/lock_table.h>

namespace {

constexpr int kChildren = 4;
constexpr int kIncrements = 200;

long read_counter(const std::string& path)
{
    std::ifstream in(path);
    long n = 0;
    in >> n;
    return n;
}

void write_counter(const std::string& path, long n)
{
    std::ofstream out(path, std::ios::trunc);
    out << n << '\n';
}

// One child's work: read, add one, write, each time under the key's lock.
int child(forklock::LockTable& table, const std::string& path)
{
    for (int i = 0; i < kIncrements; ++i) {
        forklock::KeyGuard guard = table.lock("counter");
        write_counter(path, read_counter(path) + 1);
    }
    return 0;
}

} // namespace

int main()
{
    char dir[] = "/tmp/lock_dict.XXXXXX";
    if (::mkdtemp(dir) == nullptr) return 2;
    const std::string path = std::string(dir) + "/counter";
    write_counter(path, 0);

    forklock::LockTableOptions options;
    options.mode = forklock::LockMode::mutex;
    forklock::LockTable table(options); // made before fork: every child inherits it

    for (int c = 0; c < kChildren; ++c) {
        const pid_t pid = ::fork();
        if (pid < 0) return 2;
        if (pid == 0) ::_exit(child(table, path));
    }
    int failed = 0;
    for (int c = 0; c < kChildren; ++c) {
        int status = 0;
        if (::wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
    }
    const long total = read_counter(path);
    std::remove(path.c_str());
    ::rmdir(dir);
    std::printf("%d children x %d increments under table.lock(\"counter\"): %ld\n", kChildren,
                kIncrements, total);
    return failed == 0 && total == long{kChildren} * kIncrements ? 0 : 1;
}
