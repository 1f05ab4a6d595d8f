#include "guard.h"

#include <fmt/format.h>
#include <unistd.h>

#include "errors.h"
#include "os/current_pid.h"

namespace py = pybind11;

namespace forklock::python {

Guard::Guard(py::object table_object, Table& table, py::object key, std::string bytes,
             std::optional<std::chrono::nanoseconds> timeout)
    : table_object_(std::move(table_object)), table_(table), key_(std::move(key)),
      bytes_(std::move(bytes)), timeout_(timeout)
{
}

Guard::~Guard()
{
    if (!held_) return;
    if (pid_ != current_pid()) {
        (void)held_.release(); // a fork child's copy: the key is the parent's to unlock
        return;
    }
    table_.count_held(-1);
    table_.unlock(*held_);
}

void Guard::took(Acquired acquired)
{
    waited_ = acquired.waited;
    recovered_from_ = acquired.guard.recovered_from();
    held_ = std::make_unique<KeyGuard>(std::move(acquired.guard));
    pid_ = current_pid();
    thread_ = std::this_thread::get_id();
    entered_ = false;
    table_.count_held(1);
}

void Guard::lock()
{
    check_holder("lock");
    if (held_)
        throw_not_holder("this guard already holds its key: forklock locks are not reentrant");
    Acquired a = table_.acquire(bytes_, timeout_);
    if (!a.guard) {
        const double s = std::chrono::duration<double>(*timeout_).count();
        PyErr_SetString(PyExc_TimeoutError,
                        fmt::format("the key was not locked within {:g} s", s).c_str());
        throw py::error_already_set();
    }
    took(std::move(a));
}

bool Guard::try_lock()
{
    Acquired a = table_.acquire(bytes_, std::chrono::nanoseconds(0));
    if (!a.guard) return false;
    took(std::move(a));
    return true;
}

void Guard::enter()
{
    if (held() && !entered_) {
        entered_ = true; // from try_lock()
        return;
    }
    lock();
    entered_ = true;
}

void Guard::check_holder(const char* action) const
{
    if (held_ && pid_ != current_pid())
        throw_not_holder(fmt::format(
            "{}: this guard was locked by pid {}, and pid {} is a fork() child: a child does not "
            "hold its parent's keys (the parent unlocks them)",
            action, pid_, current_pid()));
    if (held_ && thread_ != std::this_thread::get_id())
        throw_not_holder(fmt::format("{}: this guard belongs to the thread that locked it", action));
}

bool Guard::unlock()
{
    check_holder("unlock");
    if (!held_) throw_not_holder("unlock: this guard does not hold its key");
    std::unique_ptr<KeyGuard> g = std::move(held_);
    entered_ = false;
    table_.count_held(-1);
    return table_.unlock(*g);
}

void Guard::exit(bool block_raised)
{
    if (unlock() || block_raised) return;
    throw LockLostError("the key's lock server session ended while the key was held: another "
                        "holder may have been inside; do not acknowledge what was written");
}

bool Guard::still_held()
{
    check_holder("still_held");
    if (!held_) return false;
    if (!facts(table_.get().mode()).uses_lock_server) return held_->still_held();
    py::gil_scoped_release nogil;
    return held_->still_held();
}

bool Guard::held() const noexcept { return held_ != nullptr && pid_ == current_pid(); }

double Guard::waited() const noexcept { return std::chrono::duration<double>(waited_).count(); }

py::object Guard::recovered_from() const
{
    if (recovered_from_ == 0) return py::none();
    return py::int_(recovered_from_);
}

py::object Guard::pid() const
{
    if (pid_ == 0) return py::none();
    return py::int_(pid_);
}

} // namespace forklock::python
