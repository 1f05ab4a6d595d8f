#include "errors.h"

#include <system_error>

#include "facade.h"

namespace py = pybind11;

namespace forklock::python {
namespace {

// The classes live as long as the interpreter: plain handles owned by the module object.
PyObject* table_full_error = nullptr;
PyObject* lock_name_error = nullptr;
PyObject* lock_server_error = nullptr;
PyObject* lock_lost_error = nullptr;

PyObject* new_class(py::module_& m, const char* name, PyObject* base, const char* doc)
{
    const std::string qualified = std::string("forklock.") + name;
    PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base, nullptr);
    if (!cls) throw py::error_already_set();
    m.add_object(name, py::handle(cls)); // steals nothing: add_object increfs
    return cls;
}

void set_os_error(const std::system_error& e)
{
    // OSError(errno, text) builds the errno's subclass (FileNotFoundError, PermissionError...).
    py::object err = py::reinterpret_steal<py::object>(
        PyObject_CallFunction(PyExc_OSError, "is", e.code().value(), e.what()));
    if (err) PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(err.ptr())), err.ptr());
}

void translate(std::exception_ptr p)
{
    try {
        std::rethrow_exception(p);
    } catch (const TableFullError& e) {
        PyErr_SetString(table_full_error, e.what());
    } catch (const LockNameError& e) {
        PyErr_SetString(lock_name_error, e.what());
    } catch (const LockLostError& e) {
        PyErr_SetString(lock_lost_error, e.what());
    } catch (const LockServerError& e) {
        PyErr_SetString(lock_server_error, e.what());
    } catch (const std::invalid_argument& e) { // InvalidKeyError too
        PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::system_error& e) {
        set_os_error(e);
    }
}

} // namespace

void bind_errors(py::module_& m)
{
    PyObject* base = new_class(m, "LockError", PyExc_RuntimeError,
                               "Base of forklock's own errors.");
    table_full_error = new_class(
        m, "TableFullError", base,
        "Every slot the key could use is held or waited on: fail the request (503), do not "
        "retry hot.");
    lock_name_error = new_class(
        m, "LockNameError", base,
        "A named table is in use by live processes this table may not join (share=False, or "
        "another mode or capacity). Nothing was changed.");
    lock_server_error = new_class(
        m, "LockServerError", base,
        "postgres, redis mode: the lock server could not be reached, refused or was lost.");
    lock_lost_error = new_class(
        m, "LockLostError", lock_server_error,
        "postgres mode: the session holding a key ended while it was held (redis mode: its "
        "lease expired); another holder may have been inside. Do not acknowledge what was "
        "written under it.");
    py::register_exception_translator(translate);
}

void set_python_error(std::exception_ptr p) noexcept
{
    try {
        translate(p); // rethrows what is not the library's
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (py::builtin_exception& e) {
        e.set_error();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (...) {
        PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
    }
}

void throw_not_holder(const std::string& what)
{
    PyErr_SetString(PyExc_RuntimeError, what.c_str());
    throw py::error_already_set();
}

} // namespace forklock::python
