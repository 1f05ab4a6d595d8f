#pragma once
// The HTTP client of the demo and the tests, on libevent's evhttp client side: no HTTP is parsed
// here. Two ways to use it:
//   - http_request(): one request on a fresh connection ("Connection: close"), blocking, so each
//     request is accepted anew and can land on any worker;
//   - HttpClient: one event_base running many keep-alive connections and requests at once from
//     one thread (what wrk does), with completions delivered from run_until().
// Threads: an HttpClient belongs to the thread that created it; http_request() may be called from
// any number of threads at once (each call has its own event_base). Failures of the exchange
// (refused, reset, closed early, timed out) are not exceptions: the response has status 0 and
// `error` says why, because tests and the demo expect them when they kill workers.
// The first client ignores SIGPIPE in the whole process: libevent writes with writev(), which
// raises it when a server closes first; ServerProcess restores it for the server it starts.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

struct event_base;
struct event;
struct evhttp_connection;

namespace forklock::harness {

using Clock = std::chrono::steady_clock;

// Called in every wait slice (about every 100 ms) of a client or a ServerProcess: it may throw
// to abandon the wait, as the demo does on Ctrl-C. Empty: nothing to check.
using PollHook = std::function<void()>;

struct Endpoint {
    std::string host = "127.0.0.1"; // a numeric address: "127.0.0.1", "::1"
    std::uint16_t port = 0;
};

struct HttpRequest {
    std::string method = "GET"; // GET HEAD POST PUT DELETE OPTIONS PATCH; others are invalid
    std::string target = "/";
    std::vector<std::pair<std::string, std::string>> headers; // sent as given; Host is added
    std::string body;
};

struct HttpResponse {
    int status = 0;                             // 0: no response; `error` says why
    std::map<std::string, std::string> headers; // names lower-cased
    std::string body;
    std::string error;

    // The body as JSON; a discarded value (is_discarded()) when it is not JSON.
    [[nodiscard]] nlohmann::json json() const;
    [[nodiscard]] bool ok() const noexcept { return status >= 200 && status < 300; }
};

// A reply that was missing or not what the caller needs (thrown by callers, not by the client).
struct HttpError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class HttpClient final {
public:
    using Connection = std::size_t;
    using Done = std::function<void(HttpResponse)>;

    // Throws std::system_error when libevent cannot make an event_base.
    explicit HttpClient(PollHook poll = {});
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // connect opens a keep-alive connection to `to` (the TCP connect happens with its first
    // request). `timeout` bounds each wait for the server on it. Valid for the client's life.
    Connection connect(const Endpoint& to, Clock::duration timeout);
    // send queues `request` on `connection`; `done` runs later, from run_until(), with the
    // response. Requests on one connection go one after another. Throws std::invalid_argument
    // for an unknown method.
    void send(Connection connection, const HttpRequest& request, Done done);
    // run_until dispatches network events and completions until `finished()` holds (true) or
    // `deadline` passes (false). Exceptions from `done` callbacks and the poll hook propagate.
    bool run_until(const std::function<bool()>& finished, Clock::time_point deadline);

private:
    struct Pending;

    void deliver_completed();

    PollHook poll_;
    std::unique_ptr<event_base, void (*)(event_base*)> base_;
    std::unique_ptr<event, void (*)(event*)> tick_;
    std::vector<std::unique_ptr<evhttp_connection, void (*)(evhttp_connection*)>> connections_;
    std::vector<Endpoint> endpoints_;
    std::vector<std::pair<Done, HttpResponse>> completed_;
    std::vector<std::unique_ptr<Pending>> pending_;
};

// http_request sends one request with "Connection: close" and waits at most `timeout` for the
// whole response. Never throws for a failed exchange (status 0); exceptions from `poll` propagate.
HttpResponse http_request(const Endpoint& to, const HttpRequest& request, Clock::duration timeout,
                          const PollHook& poll = {});
HttpResponse http_request(const Endpoint& to, std::string method, std::string target,
                          Clock::duration timeout = std::chrono::seconds(10),
                          const PollHook& poll = {});

// concurrent_requests sends `count` copies of `request` at once, each from its own thread on its
// own connection, and returns the responses in no particular order.
std::vector<HttpResponse> concurrent_requests(const Endpoint& to, const HttpRequest& request,
                                              int count, Clock::duration timeout);

} // namespace forklock::harness
