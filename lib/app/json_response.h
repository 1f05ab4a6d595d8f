#pragma once
// The one way an endpoint answers JSON. Bytes that are not UTF-8 (a path, a method or a query
// echoed in an error) become U+FFFD: dump() would throw otherwise, and from a handler's own catch
// that ended the worker (found by fuzz_api). Thread safety: a pure function. Defined in api.cpp.

#include <nlohmann/json.hpp>

#include "app/api.h"

namespace forklock {

Response json_response(int status, const nlohmann::ordered_json& body);

} // namespace forklock
