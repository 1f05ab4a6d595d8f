#pragma once
// The Python type of a Guard (guard.h) and LockTable.lock(), written against the CPython API
// rather than pybind11: `with table.lock(key):` makes a guard and calls __enter__ and __exit__,
// and pybind11's dispatch (~250 ns a call here) would triple an uncontended lock's cost.

#include <pybind11/pybind11.h>

namespace forklock::python {

// Creates forklock.Guard in `m` and puts the fast lock() on `table_class`.
void bind_guard_type(pybind11::module_& m, pybind11::handle table_class);

// new_guard: a Guard of `key` (str or bytes) in the table `table_object`, not yet held.
pybind11::object new_guard(pybind11::handle table_object, pybind11::handle key,
                           pybind11::handle timeout);

// guard_of: the Guard inside a forklock.Guard object.
class Guard;
Guard& guard_of(pybind11::handle object);

} // namespace forklock::python
