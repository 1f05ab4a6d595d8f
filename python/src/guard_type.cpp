#include "guard_type.h"

#include <new>

#include "arguments.h"
#include "errors.h"
#include "guard.h"

namespace py = pybind11;

namespace forklock::python {
namespace {

struct GuardObject {
    PyObject_HEAD
    alignas(Guard) unsigned char storage[sizeof(Guard)];
    bool constructed;
};

PyTypeObject* guard_type = nullptr;

Guard& inner(PyObject* self)
{
    return *std::launder(reinterpret_cast<Guard*>(reinterpret_cast<GuardObject*>(self)->storage));
}

// Runs `body` with C++ exceptions turned into the Python error; returns nullptr for them.
template <typename Body>
PyObject* guarded(Body&& body) noexcept
{
    try {
        return body();
    } catch (...) {
        set_python_error(std::current_exception());
        return nullptr;
    }
}

PyObject* py_bool(bool b)
{
    PyObject* r = b ? Py_True : Py_False;
    Py_INCREF(r);
    return r;
}

void dealloc(PyObject* self)
{
    auto* g = reinterpret_cast<GuardObject*>(self);
    if (g->constructed) inner(self).~Guard(); // a held guard unlocks (in its own process)
    PyTypeObject* type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
}

PyObject* enter(PyObject* self, PyObject*)
{
    return guarded([&] {
        inner(self).enter();
        Py_INCREF(self);
        return self;
    });
}

PyObject* exit(PyObject* self, PyObject* const* args, Py_ssize_t nargs)
{
    return guarded([&] {
        inner(self).exit(nargs > 0 && args[0] != Py_None);
        return py_bool(false);
    });
}

PyObject* unlock(PyObject* self, PyObject*)
{
    return guarded([&] { return py_bool(inner(self).unlock()); });
}

PyObject* still_held(PyObject* self, PyObject*)
{
    return guarded([&] { return py_bool(inner(self).still_held()); });
}

PyObject* get_held(PyObject* self, void*) { return py_bool(inner(self).held()); }
PyObject* get_key(PyObject* self, void*) { return inner(self).key().release().ptr(); }
PyObject* get_waited(PyObject* self, void*) { return PyFloat_FromDouble(inner(self).waited()); }
PyObject* get_recovered(PyObject* self, void*)
{
    return inner(self).recovered_from().release().ptr();
}
PyObject* get_pid(PyObject* self, void*) { return inner(self).pid().release().ptr(); }
int is_held(PyObject* self) { return inner(self).held() ? 1 : 0; }

PyMethodDef guard_methods[] = {
    {"__enter__", enter, METH_NOARGS, "Locks the key (unless try_lock() holds it); the guard."},
    {"__exit__", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(exit)),
     METH_FASTCALL, "Unlocks the key; LockLostError if it was lost while held (postgres)."},
    {"unlock", unlock, METH_NOARGS,
     "Unlocks the key: False if it had been lost while held (postgres). RuntimeError if this "
     "guard does not hold it here (another process or thread, or not held)."},
    {"still_held", still_held, METH_NOARGS,
     "Whether the key is still held (only postgres mode can lose it); RuntimeError in a fork "
     "child of the holder."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef guard_getset[] = {
    {"held", get_held, nullptr, "True while this process holds the key through this guard.",
     nullptr},
    {"key", get_key, nullptr, "The key as given (str or bytes).", nullptr},
    {"waited", get_waited, nullptr,
     "Seconds (float) the last acquisition waited; 0.0 when uncontended.", nullptr},
    {"recovered_from", get_recovered, nullptr,
     "The pid of a dead holder the last acquisition took the key back from, or None.", nullptr},
    {"pid", get_pid, nullptr, "The process that last locked it, or None.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyObject* table_lock(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames)
{
    PyObject* key = nargs > 0 ? args[0] : nullptr;
    PyObject* timeout = nargs > 1 ? args[1] : Py_None;
    const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; ++i) {
        PyObject* name = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(name, "key") == 0 && !key)
            key = args[nargs + i];
        else if (PyUnicode_CompareWithASCIIString(name, "timeout") == 0 && nargs < 2)
            timeout = args[nargs + i];
        else
            return PyErr_Format(PyExc_TypeError, "lock() got an unexpected argument '%U'", name);
    }
    if (!key || nargs > 2) return PyErr_Format(PyExc_TypeError, "lock(key, timeout=None)");
    return guarded([&] { return new_guard(self, key, timeout).release().ptr(); });
}

PyMethodDef table_lock_def = {
    "lock", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(table_lock)),
    METH_FASTCALL | METH_KEYWORDS,
    "lock(key, timeout=None) -> Guard: `with` locks the key, waiting without the GIL (Ctrl-C "
    "interrupts the wait); TimeoutError after `timeout` seconds (None: for ever)."};

} // namespace

py::object new_guard(py::handle table_object, py::handle key, py::handle timeout)
{
    Table& table = table_object.cast<Table&>();
    table.get(); // a closed table refuses here, not at __enter__
    std::string bytes = key_bytes(key);
    const auto t = timeout_of(timeout);
    auto obj = py::reinterpret_steal<py::object>(guard_type->tp_alloc(guard_type, 0));
    if (!obj) throw py::error_already_set();
    auto* g = reinterpret_cast<GuardObject*>(obj.ptr());
    new (g->storage) Guard(py::reinterpret_borrow<py::object>(table_object), table,
                           py::reinterpret_borrow<py::object>(key), std::move(bytes), t);
    g->constructed = true;
    return obj;
}

Guard& guard_of(py::handle object)
{
    if (Py_TYPE(object.ptr()) != guard_type) throw py::type_error("not a forklock.Guard");
    return inner(object.ptr());
}

void bind_guard_type(py::module_& m, py::handle table_class)
{
    PyType_Slot slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(dealloc)},
        {Py_tp_methods, guard_methods},
        {Py_tp_getset, guard_getset},
        {Py_nb_bool, reinterpret_cast<void*>(is_held)},
        {Py_tp_doc, const_cast<char*>(
            "A key of a lock table: `with` locks it and unlocks it. Made by LockTable.lock() "
            "and try_lock(); belongs to the process and thread that locked it.")},
        {0, nullptr},
    };
    PyType_Spec spec = {"forklock.Guard", sizeof(GuardObject), 0, Py_TPFLAGS_DEFAULT, slots};
    guard_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&spec));
    if (!guard_type) throw py::error_already_set();
    m.add_object("Guard", py::handle(reinterpret_cast<PyObject*>(guard_type)));
    auto descr = py::reinterpret_steal<py::object>(
        PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(table_class.ptr()), &table_lock_def));
    if (!descr) throw py::error_already_set();
    table_class.attr("lock") = descr;
}

} // namespace forklock::python
