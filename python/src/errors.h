#pragma once
// The module's exceptions: the C++ library's errors as Python ones.
//   TableFullError, LockNameError, LockServerError (LockLostError below it): forklock.LockError
//   (a RuntimeError) subclasses, classes of this module;
//   std::invalid_argument (bad options, InvalidKeyError): ValueError;
//   std::system_error: OSError(errno, what), so Python picks the subclass (PermissionError...).

#include <exception>
#include <string>

#include <pybind11/pybind11.h>

namespace forklock::python {

// Creates the exception classes in `m` and registers the translator for every call.
void bind_errors(pybind11::module_& m);

// set_python_error: the Python error for a C++ exception, for the functions bound without
// pybind11 (guard_type.cpp); the same mapping as above.
void set_python_error(std::exception_ptr p) noexcept;

// A RuntimeError that says a guard is used where it is not the holder (another process or
// thread). Never a C++ call on the lock: the guard's check runs first.
[[noreturn]] void throw_not_holder(const std::string& what);

} // namespace forklock::python
