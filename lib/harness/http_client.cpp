#include "harness/http_client.h"

#include <algorithm>
#include <cctype>
#include <csignal>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fmt/format.h>

namespace forklock::harness {

// One request in flight: where its completion goes, and why it failed if it did.
struct HttpClient::Pending {
    HttpClient* client = nullptr;
    Done done;
    std::string error;

    static void on_response(evhttp_request* request, void* arg) noexcept;
    static void on_error(evhttp_request_error error, void* arg) noexcept;
};

namespace {

using namespace std::chrono_literals;

constexpr auto kPollSlice = 100ms;

timeval to_timeval(Clock::duration duration)
{
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
    return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

evhttp_cmd_type method_of(const std::string& method)
{
    static const std::map<std::string, evhttp_cmd_type> methods{
        {"GET", EVHTTP_REQ_GET},    {"HEAD", EVHTTP_REQ_HEAD},     {"POST", EVHTTP_REQ_POST},
        {"PUT", EVHTTP_REQ_PUT},    {"DELETE", EVHTTP_REQ_DELETE}, {"OPTIONS", EVHTTP_REQ_OPTIONS},
        {"PATCH", EVHTTP_REQ_PATCH}};
    const auto it = methods.find(method);
    if (it == methods.end()) throw std::invalid_argument("HTTP method not supported: " + method);
    return it->second;
}

const char* describe(evhttp_request_error error)
{
    switch (error) {
    case EVREQ_HTTP_TIMEOUT: return "timed out";
    case EVREQ_HTTP_EOF: return "connection closed before the response";
    case EVREQ_HTTP_INVALID_HEADER: return "invalid response header";
    case EVREQ_HTTP_BUFFER_ERROR: return "connection failed (refused or reset)";
    case EVREQ_HTTP_REQUEST_CANCEL: return "request cancelled";
    case EVREQ_HTTP_DATA_TOO_LONG: return "response too long";
    }
    return "failed";
}

bool has_header(const HttpRequest& request, std::string_view name)
{
    return std::any_of(request.headers.begin(), request.headers.end(), [&](const auto& header) {
        return std::equal(header.first.begin(), header.first.end(), name.begin(), name.end(),
                          [](char a, char b) { return std::tolower(a) == std::tolower(b); });
    });
}

std::string lower(std::string text)
{
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

HttpResponse response_of(evhttp_request* request)
{
    HttpResponse response;
    response.status = evhttp_request_get_response_code(request);
    const evkeyvalq* headers = evhttp_request_get_input_headers(request);
    for (const evkeyval* h = headers->tqh_first; h != nullptr; h = h->next.tqe_next)
        response.headers[lower(h->key)] = h->value;
    evbuffer* input = evhttp_request_get_input_buffer(request);
    response.body.resize(evbuffer_get_length(input));
    evbuffer_copyout(input, response.body.data(), response.body.size());
    return response;
}

void ignore_sigpipe_once()
{
    static std::once_flag once;
    std::call_once(once, [] { std::signal(SIGPIPE, SIG_IGN); });
}

void tick(evutil_socket_t, short, void*) {}

} // namespace

// evhttp calls this once per request: with the response, or with nullptr when it failed. C code
// calls it, so nothing may be thrown through it: the completion is queued for run_until(), and
// running out of memory here terminates (noexcept).
void HttpClient::Pending::on_response(evhttp_request* request, void* arg) noexcept
{
    auto* pending = static_cast<Pending*>(arg);
    HttpResponse response;
    if (request != nullptr && evhttp_request_get_response_code(request) != 0)
        response = response_of(request);
    else
        response.error = pending->error.empty() ? "no response" : pending->error;
    HttpClient* client = pending->client;
    client->completed_.emplace_back(std::move(pending->done), std::move(response));
    std::erase_if(client->pending_, [&](const auto& p) { return p.get() == pending; });
}

// Called before on_response(nullptr) with the reason of a failure.
void HttpClient::Pending::on_error(evhttp_request_error error, void* arg) noexcept
{
    static_cast<Pending*>(arg)->error = describe(error);
}

HttpClient::HttpClient(PollHook poll)
    : poll_(std::move(poll)), base_(event_base_new(), event_base_free), tick_(nullptr, event_free)
{
    if (!base_) throw std::system_error(errno, std::generic_category(), "event_base_new() failed");
    ignore_sigpipe_once();
    tick_.reset(event_new(base_.get(), -1, EV_PERSIST, tick, nullptr));
    const timeval slice = to_timeval(kPollSlice);
    if (!tick_ || event_add(tick_.get(), &slice) != 0)
        throw std::system_error(ENOMEM, std::generic_category(), "event_add(tick) failed");
}

HttpClient::~HttpClient()
{
    // Freeing a connection frees its requests without calling back: nothing touches pending_.
    connections_.clear();
}

HttpClient::Connection HttpClient::connect(const Endpoint& to, Clock::duration timeout)
{
    evhttp_connection* connection =
        evhttp_connection_base_new(base_.get(), nullptr, to.host.c_str(), to.port);
    if (connection == nullptr)
        throw std::system_error(
            errno, std::generic_category(),
            fmt::format("evhttp_connection_base_new({}, {}) failed", to.host, to.port));
    connections_.emplace_back(connection, evhttp_connection_free);
    const timeval limit = to_timeval(timeout);
    evhttp_connection_set_timeout_tv(connection, &limit);
    endpoints_.push_back(to);
    return connections_.size() - 1;
}

void HttpClient::send(Connection connection, const HttpRequest& request, Done done)
{
    const evhttp_cmd_type method = method_of(request.method);
    const Endpoint& to = endpoints_.at(connection);
    auto pending = std::make_unique<Pending>(Pending{this, std::move(done), {}});
    evhttp_request* outgoing = evhttp_request_new(Pending::on_response, pending.get());
    if (outgoing == nullptr) throw std::bad_alloc();
    evhttp_request_set_error_cb(outgoing, Pending::on_error);
    evkeyvalq* headers = evhttp_request_get_output_headers(outgoing);
    if (!has_header(request, "Host")) {
        const bool v6 = to.host.find(':') != std::string::npos;
        const std::string host =
            (v6 ? "[" + to.host + "]" : to.host) + ":" + std::to_string(to.port);
        evhttp_add_header(headers, "Host", host.c_str());
    }
    for (const auto& [name, value] : request.headers)
        evhttp_add_header(headers, name.c_str(), value.c_str());
    if (!has_header(request, "Content-Length") &&
        (!request.body.empty() || method == EVHTTP_REQ_PATCH))
        evhttp_add_header(headers, "Content-Length", std::to_string(request.body.size()).c_str());
    evbuffer_add(evhttp_request_get_output_buffer(outgoing), request.body.data(),
                 request.body.size());
    // On failure evhttp_make_request frees the request itself.
    if (evhttp_make_request(connections_[connection].get(), outgoing, method,
                            request.target.c_str()) != 0)
        throw std::runtime_error(
            fmt::format("evhttp_make_request({} {}) failed", request.method, request.target));
    pending_.push_back(std::move(pending));
}

void HttpClient::deliver_completed()
{
    auto completed = std::exchange(completed_, {});
    for (auto& [done, response] : completed) done(std::move(response));
}

bool HttpClient::run_until(const std::function<bool()>& finished, Clock::time_point deadline)
{
    for (;;) {
        deliver_completed();
        if (finished()) return true;
        if (poll_) poll_();
        if (Clock::now() >= deadline) return false;
        // The tick returns this within kPollSlice, so the hook and the deadline are checked.
        event_base_loop(base_.get(), EVLOOP_ONCE);
    }
}

nlohmann::json HttpResponse::json() const { return nlohmann::json::parse(body, nullptr, false); }

HttpResponse http_request(const Endpoint& to, const HttpRequest& request, Clock::duration timeout,
                          const PollHook& poll)
{
    HttpClient client(poll);
    HttpRequest once = request;
    if (!has_header(once, "Connection")) once.headers.emplace_back("Connection", "close");
    std::optional<HttpResponse> response;
    client.send(client.connect(to, timeout), once,
                [&](HttpResponse r) { response = std::move(r); });
    if (client.run_until([&] { return response.has_value(); }, Clock::now() + timeout))
        return *response;
    HttpResponse late;
    late.error =
        fmt::format("no response within {} ms",
                    std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
    return late;
}

HttpResponse http_request(const Endpoint& to, std::string method, std::string target,
                          Clock::duration timeout, const PollHook& poll)
{
    return http_request(to, HttpRequest{std::move(method), std::move(target), {}, {}}, timeout,
                        poll);
}

std::vector<HttpResponse> concurrent_requests(const Endpoint& to, const HttpRequest& request,
                                              int count, Clock::duration timeout)
{
    std::vector<HttpResponse> responses(static_cast<std::size_t>(std::max(count, 0)));
    {
        std::vector<std::jthread> clients;
        for (auto& response : responses)
            clients.emplace_back([&] { response = http_request(to, request, timeout); });
    }
    return responses;
}

} // namespace forklock::harness
