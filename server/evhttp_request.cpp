#include "evhttp_request.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <optional>
#include <string>

#include <fmt/format.h>

#include "app/log.h"
#include "app/site_guard.h"

namespace forklock {
namespace {

const char* method_name(evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "UNKNOWN";
}


std::size_t header_bytes(evkeyvalq* headers)
{
    std::size_t total = 0;
    for (evkeyval* h = headers->tqh_first; h != nullptr; h = h->next.tqe_next)
        total +=
            std::char_traits<char>::length(h->key) + std::char_traits<char>::length(h->value) + 4;
    return total;
}

// 127.0.0.0/8, ::1, or ::ffff:127.x.y.z (an IPv4 peer on a dual-stack socket).
bool is_loopback(const char* host)
{
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, host, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    if (::inet_pton(AF_INET6, host, &v6) != 1) return false;
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

std::optional<std::string> header_value(evkeyvalq* headers, const char* name)
{
    const char* value = evhttp_find_header(headers, name);
    return value ? std::optional<std::string>(value) : std::nullopt;
}

// What the site checks and the controls decide on (site_guard.h, api_control.h): the headers
// naming the server and the page the request came from, the token, and the peer.
void fill_site_fields(evhttp_request* req, Request& r)
{
    evkeyvalq* in = evhttp_request_get_input_headers(req);
    r.token = header_value(in, "X-Forklock-Token").value_or("");
    r.host = header_value(in, "Host");
    r.origin = header_value(in, "Origin");
    r.fetch_site = header_value(in, "Sec-Fetch-Site").value_or("");
    char* host = nullptr;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &host, &port);
    r.from_loopback = host != nullptr && is_loopback(host);
}

} // namespace

std::variant<Request, Response> to_request(evhttp_request* req, const RequestLimits& limits)
{
    const char* uri = evhttp_request_get_uri(req);
    if (std::char_traits<char>::length(uri) > limits.header_bytes)
        return json_error(414, fmt::format("the request target is longer than {} bytes",
                                           limits.header_bytes));
    if (header_bytes(evhttp_request_get_input_headers(req)) > limits.header_bytes)
        return json_error(431, fmt::format("the request headers are larger than {} bytes",
                                           limits.header_bytes));
    if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > limits.body_bytes)
        return json_error(
            413, fmt::format("the request body is larger than {} bytes", limits.body_bytes));
    const evhttp_uri* parsed = evhttp_request_get_evhttp_uri(req);
    const char* path = parsed ? evhttp_uri_get_path(parsed) : nullptr;
    const char* query = parsed ? evhttp_uri_get_query(parsed) : nullptr;
    if (path == nullptr || *path != '/')
        return json_error(400, "the request target must be a path starting with '/'");
    Request r{method_name(evhttp_request_get_command(req)), path, query ? query : ""};
    fill_site_fields(req, r);
    evbuffer* body = evhttp_request_get_input_buffer(req);
    r.body.resize(evbuffer_get_length(body));
    if (!r.body.empty()) evbuffer_copyout(body, r.body.data(), r.body.size());
    return r;
}

void log_request(evhttp_request* req, const Response& response)
{
    char* host = nullptr;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &host, &port);
    auto* in = evhttp_request_get_input_headers(req);
    auto header = [in](const char* name) {
        const char* v = evhttp_find_header(in, name);
        return v ? v : "";
    };
    // The dashboard's URL holds ?token=, and so does the Referer of a request from it.
    std::string line = fmt::format("{} {} HTTP/1.1", method_name(evhttp_request_get_command(req)),
                                   mask_tokens(evhttp_request_get_uri(req)));
    log_access({host ? host : "-", line, response.status, response.body.size(),
                mask_tokens(header("Referer")), header("User-Agent")});
}

} // namespace forklock
