#include "http_adapter.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include <fcntl.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>
#include <string>
#include <variant>

#include <fmt/format.h>

#include "app/log.h"
#include "evhttp_request.h"
#include "http_status.h"
#include "listener.h"
#include "os/current_pid.h"
#include "os/os_error.h"

namespace forklock {
namespace {

constexpr timeval kHeartbeatTick{0, 100'000};
constexpr int kIdleTimeoutS = 30;

// evhttp's own timeout (no progress for this long, reading or writing) only backs up the
// screen's timeouts, which come first; for a client that stops reading its answer it is the
// only one.
int backstop_timeout_s(const ConnectionTimeouts& t)
{
    const auto longest = std::max({t.header, t.body, t.keepalive}) + t.linger;
    return std::max(kIdleTimeoutS, static_cast<int>(longest.count() / 1000) + 1);
}

// The loop running on this thread: libevent calls a listener's error callback with evhttp's
// argument, not ours.
thread_local HttpLoop* t_loop = nullptr;

template <typename T>
void check(T* made, const char* what)
{
    if (made == nullptr) throw std::runtime_error(fmt::format("{} failed", what));
}

// A base used by one thread only (no locks), which batches the EV_WRITE add/delete evhttp does
// for every response into one epoll_ctl per turn (libevent's changelist).
event_base* new_base()
{
    std::unique_ptr<event_config, void (*)(event_config*)> config(event_config_new(),
                                                                  event_config_free);
    check(config.get(), "event_config_new()");
    event_config_set_flag(config.get(), EVENT_BASE_FLAG_NOLOCK);
    event_config_set_flag(config.get(), EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    event_base* base = event_base_new_with_config(config.get());
    // Two priorities, before any event exists (each gets the default, 1): the wake (0) runs
    // before a listener made ready in the same epoll_wait, and its event_del drops that accept.
    if (base != nullptr && event_base_priority_init(base, 2) != 0) {
        event_base_free(base);
        return nullptr;
    }
    return base;
}

} // namespace

HttpLoop::HttpLoop(int listen_fd, std::size_t index, WorkerShared& shared)
    : index_(index), shared_(shared), base_(new_base(), event_base_free),
      http_(nullptr, evhttp_free), tick_(nullptr, event_free), reenable_(nullptr, event_free),
      watch_fd_(::fcntl(listen_fd, F_DUPFD_CLOEXEC, 0)), watch_(nullptr, event_free),
      backoff_(nullptr, event_free), listen_fd_(listen_fd),
      turn_(shared.scoreboard->totals().accepts, shared.scoreboard->totals().loops),
      wake_(nullptr, event_free)
{
    check(base_.get(), "event_base_new()");
    http_.reset(evhttp_new(base_.get()));
    check(http_.get(), "evhttp_new()");
    evhttp_set_max_headers_size(http_.get(), kHardMaxHeaderBytes);
    evhttp_set_max_body_size(http_.get(), kHardMaxBodyBytes);
    evhttp_set_timeout(http_.get(), backstop_timeout_s(shared.timeouts));
    evhttp_set_default_content_type(http_.get(), nullptr);
    evhttp_set_allowed_methods(http_.get(), kEveryMethod);
    evhttp_set_gencb(http_.get(), on_request, this);
    evhttp_set_bevcb(http_.get(), on_connection, this);
    evhttp_bound_socket* bound = evhttp_accept_socket_with_handle(http_.get(), listen_fd);
    check(bound, "evhttp_accept_socket_with_handle()");
    listener_ = evhttp_bound_socket_get_listener(bound);
    evconnlistener_set_error_cb(listener_, on_accept_error);
    backoff_.reset(evtimer_new(base_.get(), on_backoff, this));
    check(backoff_.get(), "event_new(backoff)");
    tick_.reset(event_new(base_.get(), -1, EV_PERSIST, on_tick, this));
    reenable_.reset(evtimer_new(base_.get(), on_reenable, this));
    if (!watch_fd_) throw os_error(errno, "fcntl({}, F_DUPFD_CLOEXEC)", listen_fd);
    watch_.reset(
        event_new(base_.get(), watch_fd_.get(), EV_READ | EV_ET | EV_PERSIST, on_watch, this));
    check(watch_.get(), "event_new(watch)");
    check(tick_.get(), "event_new(tick)");
    check(reenable_.get(), "event_new(reenable)");
    event_add(tick_.get(), &kHeartbeatTick);
    wake_fd_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_fd_) throw os_error(errno, "eventfd()");
    wake_.reset(event_new(base_.get(), wake_fd_.get(), EV_READ | EV_PERSIST, on_wake, this));
    check(wake_.get(), "event_new(wake)");
    event_priority_set(wake_.get(), 0);
    event_add(wake_.get(), nullptr);
    shared.wake_fds.push_back(wake_fd_.get());
}

HttpLoop::~HttpLoop()
{
    stopping_ = true; // evhttp_free runs connection_closed() after freeing the listener
    backoff_.reset();
    tick_.reset();
    reenable_.reset();
    watch_.reset();
    wake_.reset();
    http_.reset(); // frees connections and the listener before the base
}

void HttpLoop::run()
{
    t_loop = this;
    set_thread_heartbeat(&shared_.scoreboard->slot(shared_.slot).heartbeat_ns[index_]);
    tick();
    // A graceful stop ends the dispatch once the loop is drained (end_if_drained); the tick's
    // loopbreak at the drain limit ends it too.
    while (event_base_dispatch(base_.get()) == 0 && stopping_ && !drained() &&
           Scoreboard::now_ns() - stop_started_ns_ <= drain_limit_ns()) {}
}

// drained: a stopping loop has nothing in flight and no connection open: every one it accepted
// was answered (with Connection: close) or closed idle.
bool HttpLoop::drained() const noexcept { return in_flight_ == 0 && drain_.size() == 0; }

void HttpLoop::end_if_drained()
{
    if (stopping_ && drained()) event_base_loopbreak(base_.get());
}

bufferevent* HttpLoop::on_connection(event_base* base, void* self)
{
    auto* loop = static_cast<HttpLoop*>(self);
    loop->accepted();
    // Strict parsing and timeouts (screened_connection.h); its close hook counts the connection
    // out.
    bufferevent* bev = new_screened_bufferevent(
        base, loop->shared_.timeouts, loop->drain_, [loop] { loop->connection_closed(); },
        [loop](const SimpleRequest& simple, bool from_loopback, std::string& out) {
            return loop->serve_simple(simple, from_loopback, out);
        },
        [loop](bool unsent) {
            if (!unsent) return loop->reply_done();
            ++loop->in_flight_;
        });
    if (bev == nullptr) // evhttp makes its own, which we can't count
        loop->shared_.scoreboard->slot(loop->shared_.slot).connections.fetch_sub(1);
    return bev;
}

void HttpLoop::on_accept_error(evconnlistener*, void*)
{
    const int error = errno; // libevent calls us right after the failed accept()
    if (t_loop != nullptr) t_loop->back_off(error);
}

void HttpLoop::on_request(evhttp_request* req, void* self)
{
    static_cast<HttpLoop*>(self)->serve(req);
}

void HttpLoop::serve(evhttp_request* req)
{
    WorkerSlot& slot = shared_.scoreboard->slot(shared_.slot);
    slot.busy_threads.fetch_add(1, std::memory_order_relaxed);
    turn_.served();
    auto converted = to_request(req, {kMaxHeaderBytes, kMaxBodyBytes});
    Response response = std::holds_alternative<Response>(converted)
                            ? std::get<Response>(std::move(converted))
                            : shared_.api->handle(std::get<Request>(converted));
    slot.busy_threads.fetch_sub(1, std::memory_order_relaxed);
    slot.requests.fetch_add(1, std::memory_order_relaxed);
    shared_.requests.fetch_add(1, std::memory_order_relaxed);
    if (access_log_enabled()) log_request(req, response);
    send(req, response);
    accept_again();
}

// serve_simple: serve() for a simple request (see the header), the response's bytes into `out`.
bool HttpLoop::serve_simple(const SimpleRequest& simple, bool from_loopback, std::string& out)
{
    if (stopping_ || shared_.timeouts.keepalive.count() == 0 || access_log_enabled() ||
        simple.bytes > kMaxHeaderBytes) // to_request()'s 414 and 431 need no checking below this
        return false;
    WorkerSlot& slot = shared_.scoreboard->slot(shared_.slot);
    slot.busy_threads.fetch_add(1, std::memory_order_relaxed);
    turn_.served();
    Request request{std::string(simple.method), std::string(simple.path),
                    std::string(simple.query)};
    request.from_loopback = from_loopback; // no X-Forklock-Token: it is never simple
    if (simple.host) request.host = std::string(*simple.host);
    if (simple.origin) request.origin = std::string(*simple.origin);
    request.fetch_site = simple.fetch_site;
    const Response response = shared_.api->handle(request);
    slot.busy_threads.fetch_sub(1, std::memory_order_relaxed);
    slot.requests.fetch_add(1, std::memory_order_relaxed);
    shared_.requests.fetch_add(1, std::memory_order_relaxed);
    format_response({response.status, reason_phrase(response.status), response.content_type,
                     &response.headers, response.body, http_date()},
                    out);
    accept_again();
    return true;
}

// http_date: the Date header's value, as evhttp formats it, once a second.
std::string_view HttpLoop::http_date()
{
    const std::time_t now = std::time(nullptr);
    if (now == date_second_) return date_;
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm t{};
    ::gmtime_r(&now, &t);
    date_ = fmt::format("{}, {:02} {} {:4} {:02}:{:02}:{:02} GMT", kDays[t.tm_wday], t.tm_mday,
                        kMonths[t.tm_mon], t.tm_year + 1900, t.tm_hour, t.tm_min, t.tm_sec);
    date_second_ = now;
    return date_;
}

void HttpLoop::send(evhttp_request* req, const Response& response)
{
    auto* headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", response.content_type.c_str());
    for (const auto& [name, value] : response.headers)
        evhttp_add_header(headers, name.c_str(), value.c_str());
    // Don't keep a client we'll drop.
    if (stopping_ || shared_.timeouts.keepalive.count() == 0)
        evhttp_add_header(headers, "Connection", "close");
    evbuffer* body = evbuffer_new();
    // evhttp sends whatever body it is given, HEAD or not; a HEAD response must have none.
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
        evbuffer_add(body, response.body.data(), response.body.size());
    ++in_flight_;
    evhttp_request_set_on_complete_cb(req, on_complete, this);
    bufferevent* bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
    evhttp_send_reply(req, response.status, reason_phrase(response.status), body); // req may be gone after
    evbuffer_free(body);
    write_through(bev);
}

// write_through: evhttp only queues the reply and waits a turn of the loop for the socket to be
// writable, which costs an epoll_ctl to add EV_WRITE, an epoll_wait, and an epoll_ctl to remove it
// again, on every response. A socket that just delivered a small request is almost always
// writable, so write now; if everything went out, run evhttp's own write-done callback (which
// finishes the request, then disables EV_WRITE in the same turn: the two epoll changes cancel
// out). Anything left over (a full socket buffer, an error) stays queued for the normal path.
void HttpLoop::write_through(bufferevent* bev)
{
    evbuffer* out = bufferevent_get_output(bev);
    if (evbuffer_get_length(out) == 0) return;
    if (evbuffer_write(out, bufferevent_getfd(bev)) < 0 || evbuffer_get_length(out) != 0) return;
    bufferevent_trigger(bev, EV_WRITE, 0); // may free the request and the connection: last
}

void HttpLoop::on_complete(evhttp_request*, void* self)
{
    static_cast<HttpLoop*>(self)->reply_done();
}

// reply_done: a reply in flight went out (or its connection closed); a stopping loop that waited
// for the last one ends.
void HttpLoop::reply_done()
{
    --in_flight_;
    end_if_drained();
}

void HttpLoop::on_tick(int, short, void* self) { static_cast<HttpLoop*>(self)->tick(); }

void HttpLoop::tick()
{
    auto now = Scoreboard::now_ns();
    WorkerSlot& slot = shared_.scoreboard->slot(shared_.slot);
    slot.heartbeat_ns[index_].store(now, std::memory_order_relaxed);
    if (index_ == 0 && shared_.housekeeping) shared_.housekeeping();
    resume_below_cap();
    if (!stopping_ && shared_.should_stop()) begin_stop();
    if (stopping_ && now - stop_started_ns_ > drain_limit_ns()) event_base_loopbreak(base_.get());
    end_if_drained();
}

void HttpLoop::begin_stop()
{
    stopping_ = true;
    stop_started_ns_ = Scoreboard::now_ns();
    stop_accepting();
    event_del(backoff_.get());
    drain_.start();
}

} // namespace forklock
