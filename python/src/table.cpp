#include "table.h"

#include <stdexcept>
#include <unistd.h>

#include <pybind11/pybind11.h>

#include "os/current_pid.h"

namespace py = pybind11;
using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

namespace forklock::python {

void Table::open(const LockTableOptions& options)
{
    if (table_) throw std::invalid_argument("this lock table is open already");
    {
        // Making a named table may wait for its creator to finish the header: without the GIL.
        py::gil_scoped_release nogil;
        table_ = std::make_unique<LockTable>(options);
    }
    maker_pid_ = current_pid();
}

LockTable& Table::get()
{
    if (!table_) throw std::invalid_argument("this lock table is closed");
    return *table_;
}

const LockTable& Table::get() const
{
    if (!table_) throw std::invalid_argument("this lock table is closed");
    return *table_;
}

void Table::close()
{
    if (held_here() > 0)
        throw std::invalid_argument("close(): this process still holds keys of the table; "
                                    "unlock them first");
    py::gil_scoped_release nogil; // the last user's unlink takes a flock
    table_.reset();
}

void Table::count_held(int delta) noexcept
{
    const pid_t self = current_pid();
    if (held_pid_ != self) {
        held_pid_ = self;
        held_ = 0;
    }
    held_ += delta;
}

int Table::held_here() const noexcept { return held_pid_ == current_pid() ? held_ : 0; }

Acquired Table::acquire(std::string_view key, std::optional<nanoseconds> timeout)
{
    LockTable& table = get();
    // postgres, redis: even a try is a round trip to the server, so every step goes without the
    // GIL.
    if (!facts(table.mode()).uses_lock_server) {
        KeyGuard g = table.try_lock(key);
        if (g || (timeout && *timeout <= nanoseconds(0))) return {std::move(g), nanoseconds(0)};
    }
    const auto start = Clock::now();
    std::optional<KeyGuard> g = wait_in_slices(key, timeout, start);
    if (!g) return {};
    return {std::move(*g), Clock::now() - start};
}

std::optional<KeyGuard> Table::wait_in_slices(std::string_view key,
                                              std::optional<nanoseconds> timeout,
                                              Clock::time_point start)
{
    LockTable& table = get();
    for (;;) {
        nanoseconds slice = kSignalSlice;
        if (timeout) slice = std::max(nanoseconds(0), std::min(slice, start + *timeout - Clock::now()));
        KeyGuard g;
        {
            py::gil_scoped_release nogil;
            g = table.lock_for(key, slice);
        }
        if (g) return g;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        if (timeout && Clock::now() - start >= *timeout) return std::nullopt;
    }
}

bool Table::unlock(KeyGuard& guard)
{
    if (!facts(get().mode()).uses_lock_server) return guard.unlock();
    py::gil_scoped_release nogil;
    return guard.unlock();
}

} // namespace forklock::python
