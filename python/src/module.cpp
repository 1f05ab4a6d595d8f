// _forklock: the C++ lock table (lib/locks/) for Python. The classes' Python names and their
// contract are in python/forklock/__init__.py and docs/python.md; this file only binds them.

#include <csignal>
#include <string>
#include <unistd.h>

#include <fmt/format.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arguments.h"
#include "errors.h"
#include "os/current_pid.h"
#include "guard.h"
#include "guard_type.h"
#include "table.h"

namespace py = pybind11;

namespace forklock::python {
namespace {

std::string text_or_empty(py::handle value, const char* what)
{
    if (value.is_none()) return "";
    if (!PyUnicode_Check(value.ptr()))
        throw py::type_error(fmt::format("{} is a str or None", what));
    return value.cast<std::string>();
}

LockTableOptions make_options(py::handle mode, py::handle name, bool share, long long capacity,
                              py::handle lock_dir, py::handle url, bool recover_dead_owners)
{
    LockTableOptions o;
    const std::string m = text_or_empty(mode, "mode");
    const auto parsed = parse_lock_mode(m);
    if (!parsed)
        throw std::invalid_argument(fmt::format(
            "mode must be one of none, thread, semaphore, mutex, flock, postgres, redis (or "
            "process = mutex), not '{}'", m));
    o.mode = *parsed;
    if (capacity <= 0)
        throw std::invalid_argument(fmt::format("capacity must be 1..{}, not {}",
                                                LockTable::kMaxCapacity, capacity));
    o.capacity = static_cast<std::size_t>(capacity);
    o.name = text_or_empty(name, "name");
    o.share = share;
    if (!lock_dir.is_none())
        o.lock_dir = py::module_::import("os").attr("fspath")(lock_dir).cast<std::string>();
    o.url = text_or_empty(url, "url");
    o.recover_dead_owners = recover_dead_owners;
    return o;
}

py::object try_lock(py::object self, py::handle key)
{
    py::object guard = new_guard(self, key, py::none());
    if (!guard_of(guard).try_lock()) return py::none();
    return guard;
}

std::size_t release_owned_by(Table& table, pid_t pid)
{
    if (pid <= 0 || pid == current_pid())
        throw std::invalid_argument(fmt::format("release_owned_by({}): not another process", pid));
    if (::kill(pid, 0) == 0)
        throw std::invalid_argument(fmt::format(
            "release_owned_by({}): that process is alive (or not reaped): freeing its keys would "
            "take them from a holder", pid));
    LockTable& t = table.get();
    py::gil_scoped_release nogil;
    return t.release_owned_by(pid);
}

py::dict stats_of(const Table& table)
{
    const TableStats s = table.get().stats();
    py::dict d;
    d["capacity"] = s.capacity;
    d["keys"] = s.keys;
    d["keys_high_water"] = s.keys_high_water;
    d["active"] = s.active;
    d["evictions"] = s.evictions;
    d["full_errors"] = s.full_errors;
    d["recoveries"] = s.recoveries;
    d["shared"] = s.shared;
    return d;
}

py::list key_stats_of(const Table& table, std::size_t limit)
{
    py::list out;
    for (const KeyStats& k : table.get().key_stats(limit)) {
        py::dict d;
        d["key"] = py::bytes(k.key);
        d["owner_pid"] = k.owner_pid;
        d["waiters"] = k.waiters;
        d["acquisitions"] = k.acquisitions;
        d["contended"] = k.contended;
        d["wait_seconds_total"] = static_cast<double>(k.wait_ns_total) / 1e9;
        d["wait_seconds_max"] = static_cast<double>(k.wait_ns_max) / 1e9;
        d["recoveries"] = k.recoveries;
        d["last_dead_owner"] = k.last_dead_owner;
        out.append(d);
    }
    return out;
}

const char* origin_name(TableOrigin o)
{
    switch (o) {
    case TableOrigin::anonymous: return "anonymous";
    case TableOrigin::created: return "created";
    case TableOrigin::rebuilt: return "rebuilt";
    case TableOrigin::joined: return "joined";
    }
    return "?";
}

py::handle bind_table(py::module_& m)
{
    return py::class_<Table>(m, "LockTable")
        .def(py::init<>())
        .def("_open", [](Table& t, py::handle mode, py::handle name, bool share,
                         long long capacity, py::handle lock_dir, py::handle url,
                         bool recover_dead_owners) {
                 t.open(make_options(mode, name, share, capacity, lock_dir, url,
                                     recover_dead_owners));
             },
             py::kw_only(), py::arg("mode") = "process", py::arg("name") = py::none(),
             py::arg("share") = false, py::arg("capacity") = 1024,
             py::arg("lock_dir") = py::none(), py::arg("url") = py::none(),
             py::arg("recover_dead_owners") = true)
        .def("try_lock", &try_lock, py::arg("key"))
        .def("release_owned_by", &release_owned_by, py::arg("pid"))
        .def("owner", [](const Table& t, py::handle key) -> py::object {
            const pid_t pid = t.get().owner(key_bytes(key));
            if (pid == 0) return py::none();
            return py::int_(pid);
        }, py::arg("key"))
        .def("stats", &stats_of)
        .def("key_stats", &key_stats_of, py::arg("limit") = 0)
        .def("close", &Table::close)
        .def_property_readonly("closed", &Table::closed)
        .def_property_readonly("maker_pid", &Table::maker_pid)
        .def_property_readonly("mode", [](const Table& t) { return std::string(to_string(t.get().mode())); })
        .def_property_readonly("name", [](const Table& t) -> py::object {
            const std::string& n = t.get().options().name;
            if (n.empty()) return py::none();
            return py::str(n);
        })
        .def_property_readonly("capacity", [](const Table& t) { return t.get().options().capacity; })
        .def_property_readonly("origin", [](const Table& t) { return origin_name(t.get().origin()); });
}

} // namespace
} // namespace forklock::python

PYBIND11_MODULE(_forklock, m)
{
    using namespace forklock::python;
    m.doc() = "The forklock C++ lock table; use the forklock package, not this module.";
    bind_errors(m);
    bind_guard_type(m, bind_table(m));
    m.attr("MAX_KEY_LENGTH") = forklock::LockTable::kMaxKeyLength;
    m.def("explain", [](const std::string& mode) {
        const auto parsed = forklock::parse_lock_mode(mode);
        if (!parsed) throw std::invalid_argument(fmt::format("no lock mode '{}'", mode));
        return std::string(forklock::explain(*parsed));
    });
}
