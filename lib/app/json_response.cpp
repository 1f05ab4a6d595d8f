#include "app/json_response.h"

namespace forklock {

Response json_response(int status, const nlohmann::ordered_json& body)
{
    return {status,
            "application/json",
            body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n",
            {}};
}

} // namespace forklock
