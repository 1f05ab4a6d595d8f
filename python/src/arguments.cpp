#include "arguments.h"

#include <fmt/format.h>

#include "facade.h"

namespace py = pybind11;

namespace forklock::python {

std::string key_bytes(py::handle key)
{
    const char* data = nullptr;
    Py_ssize_t size = 0;
    if (PyUnicode_Check(key.ptr())) {
        data = PyUnicode_AsUTF8AndSize(key.ptr(), &size); // cached in the str after the first
        if (!data) throw py::error_already_set();        // lone surrogates: UnicodeEncodeError
    } else if (PyBytes_Check(key.ptr())) {
        data = PyBytes_AS_STRING(key.ptr());
        size = PyBytes_GET_SIZE(key.ptr());
    } else {
        throw py::type_error(fmt::format("a key is str or bytes, not {}", Py_TYPE(key.ptr())->tp_name));
    }
    if (size == 0 || static_cast<std::size_t>(size) > LockTable::kMaxKeyLength)
        throw std::invalid_argument(fmt::format("a key is 1 to {} bytes (str: UTF-8), not {}",
                                                LockTable::kMaxKeyLength, size));
    return std::string(data, static_cast<std::size_t>(size));
}

std::optional<std::chrono::nanoseconds> timeout_of(py::handle timeout)
{
    if (timeout.is_none()) return std::nullopt;
    const double s = PyFloat_AsDouble(timeout.ptr());
    if (s == -1.0 && PyErr_Occurred()) throw py::error_already_set(); // not a number: TypeError
    if (!(s >= 0))
        throw std::invalid_argument(fmt::format("timeout must be >= 0 seconds or None, not {}", s));
    if (s > 1e9) return std::nullopt;
    return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

} // namespace forklock::python
