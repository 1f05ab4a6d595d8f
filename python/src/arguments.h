#pragma once
// The checks of the values Python passes in: keys, timeouts. Both throw ValueError (as
// std::invalid_argument) or TypeError for what the table would refuse, before any lock call.

#include <chrono>
#include <optional>
#include <string>

#include <pybind11/pybind11.h>

namespace forklock::python {

// key_bytes: a str as UTF-8, or bytes as they are; 1..LockTable::kMaxKeyLength bytes.
std::string key_bytes(pybind11::handle key);

// timeout_of: None (for ever) or seconds >= 0 (inf and more than 1e9 s: for ever).
std::optional<std::chrono::nanoseconds> timeout_of(pybind11::handle timeout);

} // namespace forklock::python
