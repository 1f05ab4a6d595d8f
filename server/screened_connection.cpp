#include "screened_connection.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/log.h"
#include "http_status.h"
#include "request_screen.h"

namespace forklock {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kAnswerPoll{1}; // while evhttp still answers earlier pipelined requests
constexpr milliseconds kDrainPoll{10}; // a stopping loop's idle connection with bytes coming

timeval to_timeval(milliseconds ms)
{
    return {static_cast<time_t>(ms.count() / 1000),
            static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

std::string error_response(int status, const std::string& message)
{
    const std::string body = nlohmann::json{{"error", message}}.dump() + "\n";
    return fmt::format("HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: "
                       "{}\r\nConnection: close\r\n\r\n{}",
                       status, reason_phrase(status), body.size(), body);
}

std::string seconds(milliseconds ms) { return fmt::format("{:g} s", ms.count() / 1000.0); }

// 127.0.0.0/8, ::1, or ::ffff:127.x.y.z (an IPv4 peer on a dual-stack socket).
bool is_loopback_address(const sockaddr_storage& a)
{
    if (a.ss_family == AF_INET)
        return (ntohl(reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr) >> 24) == 127;
    if (a.ss_family != AF_INET6) return false;
    const in6_addr& v6 = reinterpret_cast<const sockaddr_in6&>(a).sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
}

class ScreenedConnection final {
public:
    ScreenedConnection(bufferevent* bev, const ConnectionTimeouts& timeouts, ConnectionDrain& drain,
                       std::function<void()> closed, SimpleRequestHandler simple,
                       std::function<void(bool)> unsent);
    ~ScreenedConnection();
    ScreenedConnection(const ScreenedConnection&) = delete;
    ScreenedConnection& operator=(const ScreenedConnection&) = delete;

private:
    enum class Wait { attach, header, body, keepalive, answer, linger };
    enum class Mode { screening, answering, lingering };

    static void on_input(evbuffer* buf, const evbuffer_cb_info* info, void* self);
    static void on_output(evbuffer* buf, const evbuffer_cb_info* info, void* self);
    static void on_timer(evutil_socket_t, short, void* self);
    static void on_close(evhttp_connection*, void* self);
    void screen(evbuffer* buf, std::size_t from, std::size_t length);
    bool answer_simple(evbuffer* buf, std::size_t length);
    void send_simple();
    void set_unsent(bool unsent);
    bool from_loopback();
    void follow_phase();
    void expired();
    void attach();
    void arm(Wait wait, milliseconds after);
    void answer(int status, const std::string& message);
    void try_answer();
    void truncate_input(std::size_t keep);
    void close_now();
    void drain();
    [[nodiscard]] bool idle() const;
    // Without keep-alive evhttp closes after its answer; the header limit bounds a client that
    // sends a second request anyway. A stopping loop waits kDrainGrace (see the header).
    milliseconds idle_limit() const
    {
        if (drain_.started()) return kDrainGrace;
        return timeouts_.keepalive.count() > 0 ? timeouts_.keepalive : timeouts_.header;
    }

    bufferevent* bev_;
    const ConnectionTimeouts& timeouts_;
    ConnectionDrain& drain_;
    ConnectionDrain::Id drain_id_;
    RequestScreen screen_;
    event* timer_;
    evbuffer_cb_entry* input_cb_ = nullptr;
    evbuffer_cb_entry* output_cb_ = nullptr;
    Wait wait_ = Wait::attach;
    Mode mode_ = Mode::screening;
    bool attached_ = false;
    bool cutting_ = false;         // our own changes to the input: not news
    std::uint64_t head_timed_ = 1; // the request whose head the header timer is for
    std::string answer_;
    std::chrono::steady_clock::time_point answer_deadline_;
    std::function<void()> closed_;
    SimpleRequestHandler simple_;
    std::function<void(bool)> unsent_;
    bool has_unsent_ = false; // the rest of a simple answer waits in the output
    std::string simple_out_;  // kept between answers: no allocation per request
    int from_loopback_ = -1;  // the peer's address, looked up once: -1 not yet, else 0 or 1
};

ScreenedConnection::ScreenedConnection(bufferevent* bev, const ConnectionTimeouts& timeouts,
                                       ConnectionDrain& drain, std::function<void()> closed,
                                       SimpleRequestHandler simple,
                                       std::function<void(bool)> unsent)
    : bev_(bev), timeouts_(timeouts), drain_(drain),
      drain_id_(drain.join([this] { this->drain(); })),
      timer_(evtimer_new(bufferevent_get_base(bev), on_timer, this)), closed_(std::move(closed)),
      simple_(std::move(simple)), unsent_(std::move(unsent))
{
    input_cb_ = evbuffer_add_cb(bufferevent_get_input(bev_), on_input, this);
    output_cb_ = evbuffer_add_cb(bufferevent_get_output(bev_), on_output, this);
    // evhttp makes its connection object after the bevcb returns and before this runs (the
    // loop runs active events before it polls again, so before the socket can say anything).
    event_active(timer_, EV_TIMEOUT, 0);
}

ScreenedConnection::~ScreenedConnection()
{
    drain_.leave(drain_id_);
    evbuffer_remove_cb_entry(bufferevent_get_input(bev_), input_cb_);
    evbuffer_remove_cb_entry(bufferevent_get_output(bev_), output_cb_);
    event_free(timer_);
}

void ScreenedConnection::attach()
{
    if (attached_) return;
    bufferevent_data_cb read_cb = nullptr, write_cb = nullptr;
    bufferevent_event_cb event_cb = nullptr;
    void* evcon = nullptr;
    bufferevent_getcb(bev_, &read_cb, &write_cb, &event_cb, &evcon); // evhttp's arg: its evcon
    evhttp_connection_set_closecb(static_cast<evhttp_connection*>(evcon), on_close, this);
    attached_ = true;
    arm(Wait::header, drain_.started() ? kDrainGrace : timeouts_.header);
}

// drain: the loop stops (see the header). Not yet attached: attach() arms the grace.
void ScreenedConnection::drain()
{
    if (!attached_ || mode_ != Mode::screening) return;
    if (screen_.requests_begun() == 0 && evbuffer_get_length(bufferevent_get_input(bev_)) == 0)
        return arm(Wait::header, kDrainGrace);
    if (idle()) arm(Wait::keepalive, kDrainGrace);
}

// idle: between requests, nothing to write, and nothing waiting in the socket either.
bool ScreenedConnection::idle() const
{
    if (screen_.phase() != RequestScreen::Phase::idle || screen_.requests_completed() == 0 ||
        evbuffer_get_length(bufferevent_get_input(bev_)) != 0 ||
        evbuffer_get_length(bufferevent_get_output(bev_)) != 0)
        return false;
    char byte;
    return ::recv(bufferevent_getfd(bev_), &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

void ScreenedConnection::on_close(evhttp_connection*, void* self)
{
    auto* c = static_cast<ScreenedConnection*>(self);
    c->set_unsent(false);
    c->drain_.leave(c->drain_id_); // before closed_: a stopping loop may end with this one
    if (c->closed_) c->closed_();
    delete c;
}

void ScreenedConnection::arm(Wait wait, milliseconds after)
{
    wait_ = wait;
    const timeval tv = to_timeval(after);
    event_add(timer_, &tv);
}

void ScreenedConnection::on_input(evbuffer* buf, const evbuffer_cb_info* info, void* self)
{
    auto* c = static_cast<ScreenedConnection*>(self);
    if (c->cutting_ || info->n_added == 0) return;
    if (!c->attached_) c->attach();
    if (c->mode_ != Mode::screening) return c->truncate_input(info->orig_size);
    const bool was_idle = info->orig_size == 0 &&
                          c->screen_.requests_begun() == c->screen_.requests_completed() &&
                          evbuffer_get_length(bufferevent_get_output(c->bev_)) == 0;
    const std::uint64_t completed = c->screen_.requests_completed();
    c->screen(buf, info->orig_size, info->n_added);
    if (was_idle && c->simple_ && c->mode_ == Mode::screening &&
        c->screen_.requests_begun() == completed + 1 &&
        c->screen_.requests_completed() == completed + 1 && c->answer_simple(buf, info->n_added))
        c->send_simple();
}

// answer_simple: whether the one request in `buf` (its `length` bytes) is a simple one that the
// handler answered, into simple_out_.
bool ScreenedConnection::answer_simple(evbuffer* buf, std::size_t length)
{
    evbuffer_iovec chunk;
    if (evbuffer_peek(buf, -1, nullptr, &chunk, 1) != 1 || chunk.iov_len != length) return false;
    const auto simple = parse_simple_request({static_cast<const char*>(chunk.iov_base), length});
    if (!simple) return false;
    simple_out_.clear();
    return simple_(*simple, from_loopback(), simple_out_);
}

// send_simple: the request leaves the input (evhttp's read callback, next, finds nothing) and the
// answer goes out on the socket; the keep-alive wait starts again, as after evhttp's answers.
void ScreenedConnection::send_simple()
{
    truncate_input(0);
    const int fd = bufferevent_getfd(bev_);
    const ssize_t sent =
        ::send(fd, simple_out_.data(), simple_out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    const std::size_t done = sent > 0 ? static_cast<std::size_t>(sent) : 0;
    if (done < simple_out_.size()) {
        // A full socket (or an error, which the write will report): the rest waits in the output.
        // evhttp's write callback would take its draining for the end of a reply of its own.
        bufferevent_data_cb read_cb = nullptr, write_cb = nullptr;
        bufferevent_event_cb event_cb = nullptr;
        void* evcon = nullptr;
        bufferevent_getcb(bev_, &read_cb, &write_cb, &event_cb, &evcon);
        bufferevent_setcb(bev_, read_cb, nullptr, event_cb, evcon);
        evbuffer_add(bufferevent_get_output(bev_), simple_out_.data() + done,
                     simple_out_.size() - done);
        bufferevent_enable(bev_, EV_WRITE);
        set_unsent(true);
        return; // on_output arms the keep-alive wait once it is out
    }
    arm(Wait::keepalive, idle_limit());
}

void ScreenedConnection::set_unsent(bool unsent)
{
    if (unsent == has_unsent_) return;
    has_unsent_ = unsent;
    if (unsent_) unsent_(unsent);
}

bool ScreenedConnection::from_loopback()
{
    if (from_loopback_ < 0) {
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        from_loopback_ =
            ::getpeername(bufferevent_getfd(bev_), reinterpret_cast<sockaddr*>(&peer), &len) == 0 &&
            is_loopback_address(peer);
    }
    return from_loopback_ == 1;
}

// screen feeds the new bytes [from, from + length) of the input, chunk by chunk, as they lie.
void ScreenedConnection::screen(evbuffer* buf, std::size_t from, std::size_t length)
{
    evbuffer_ptr at;
    evbuffer_ptr_set(buf, &at, from, EVBUFFER_PTR_SET);
    std::array<evbuffer_iovec, 8> chunks;
    while (length > 0) {
        const int n = evbuffer_peek(buf, static_cast<ev_ssize_t>(length), &at, chunks.data(),
                                    static_cast<int>(chunks.size()));
        for (int i = 0; i < n && length > 0; ++i) {
            const std::size_t len = std::min(chunks[i].iov_len, length);
            auto verdict = screen_.feed({static_cast<const char*>(chunks[i].iov_base), len});
            if (verdict.kind == RequestScreen::Verdict::Kind::reject) {
                log(LogLevel::debug, "refused a request: {} {}", verdict.status, verdict.message);
                truncate_input(from + verdict.passed);
                return answer(verdict.status, verdict.message);
            }
            from += len;
            length -= len;
        }
        evbuffer_ptr_set(buf, &at, from, EVBUFFER_PTR_SET);
    }
    follow_phase();
}

// follow_phase arms the timer for the phase the screen is in after a read.
void ScreenedConnection::follow_phase()
{
    switch (screen_.phase()) {
    case RequestScreen::Phase::head:
        if (screen_.requests_begun() != head_timed_) {
            head_timed_ = screen_.requests_begun();
            arm(Wait::header, timeouts_.header);
        }
        break;
    case RequestScreen::Phase::body: arm(Wait::body, timeouts_.body); break;
    case RequestScreen::Phase::idle:
        if (wait_ != Wait::keepalive) arm(Wait::keepalive, idle_limit());
        break;
    }
}

// on_output: the keep-alive wait starts again when the last byte of an answer went out.
void ScreenedConnection::on_output(evbuffer* buf, const evbuffer_cb_info* info, void* self)
{
    auto* c = static_cast<ScreenedConnection*>(self);
    if (info->n_deleted == 0 || evbuffer_get_length(buf) != 0) return;
    c->set_unsent(false);
    if (c->mode_ == Mode::screening && c->screen_.phase() == RequestScreen::Phase::idle &&
        c->screen_.requests_completed() > 0)
        c->arm(Wait::keepalive, c->idle_limit());
}

void ScreenedConnection::on_timer(evutil_socket_t, short, void* self)
{
    static_cast<ScreenedConnection*>(self)->expired();
}

void ScreenedConnection::expired()
{
    const bool writing = evbuffer_get_length(bufferevent_get_output(bev_)) != 0;
    switch (wait_) {
    case Wait::attach: return attach();
    case Wait::header:
        if (writing || (drain_.started() && screen_.requests_begun() == 0)) return close_now();
        return answer(408, "the request head did not arrive within " + seconds(timeouts_.header));
    case Wait::body:
        if (writing) return close_now();
        return answer(408, "the request body stalled for " + seconds(timeouts_.body));
    case Wait::keepalive:
        if (writing) return arm(Wait::keepalive, idle_limit());
        if (drain_.started() && !idle()) return arm(Wait::keepalive, kDrainPoll);
        return close_now();
    case Wait::answer: return try_answer();
    case Wait::linger: return close_now();
    }
}

void ScreenedConnection::answer(int status, const std::string& message)
{
    mode_ = Mode::answering;
    answer_ = error_response(status, message);
    answer_deadline_ = std::chrono::steady_clock::now() + timeouts_.linger;
    arm(Wait::answer, milliseconds(0)); // after evhttp's read callback, outside this one
}

// try_answer sends the refusal once evhttp has taken (and so answered) every request before it:
// what is left in the input is then at most the refused request's own bytes.
void ScreenedConnection::try_answer()
{
    const bool earlier_pending =
        evbuffer_get_length(bufferevent_get_input(bev_)) > screen_.request_bytes() ||
        evbuffer_get_length(bufferevent_get_output(bev_)) != 0;
    if (earlier_pending) {
        if (std::chrono::steady_clock::now() > answer_deadline_) return close_now();
        return arm(Wait::answer, kAnswerPoll);
    }
    const int fd = bufferevent_getfd(bev_);
    // A short answer to a socket that has sent nothing back yet: it fits the send buffer; if a
    // client that reads nothing filled it, the answer is lost and the close is all it gets.
    [[maybe_unused]] auto sent =
        ::send(fd, answer_.data(), answer_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(fd, SHUT_WR);
    mode_ = Mode::lingering;
    truncate_input(0);
    arm(Wait::linger, timeouts_.linger);
}

// truncate_input keeps the first `keep` bytes of the input, which evhttp may parse.
void ScreenedConnection::truncate_input(std::size_t keep)
{
    evbuffer* in = bufferevent_get_input(bev_);
    if (evbuffer_get_length(in) <= keep) return;
    cutting_ = true;
    evbuffer* kept = evbuffer_new();
    evbuffer_remove_buffer(in, kept, keep);
    evbuffer_drain(in, evbuffer_get_length(in));
    evbuffer_add_buffer(in, kept);
    evbuffer_free(kept);
    cutting_ = false;
}

// close_now makes evhttp close the connection as if the socket failed; its close callback
// deletes this object, so nothing may follow.
void ScreenedConnection::close_now()
{
    bufferevent_trigger_event(bev_, BEV_EVENT_READING | BEV_EVENT_ERROR, 0);
}

} // namespace

bufferevent* new_screened_bufferevent(event_base* base, const ConnectionTimeouts& timeouts,
                                      ConnectionDrain& drain, std::function<void()> closed,
                                      SimpleRequestHandler simple, std::function<void(bool)> unsent)
{
    bufferevent* bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev != nullptr) // freed by evhttp's close callback
        new ScreenedConnection(bev, timeouts, drain, std::move(closed), std::move(simple),
                               std::move(unsent));
    return bev;
}

} // namespace forklock
