#pragma once
// HttpLoop: one thread's event loop: an event_base and an evhttp accepting on the inherited
// listening socket, handing its requests to the Api. With evhttp_request.h (a request's
// conversion) the only code that touches evhttp.
//
// Accept turns. After accepting a connection a loop stops accepting until it has served a request
// and some other loop (of any worker) has accepted one since (AcceptTurn, on the scoreboard's
// accept count). A loop waiting for its turn watches a dup of the listening socket,
// edge-triggered, so each new connection makes it look at the count again. A turn nobody takes (the
// other loops blocked in hold_ms or on a lock, a client that connects and sends nothing) is skipped
// after kTurnWait. With one loop in all there are no turns. Without them, libevent's listener
// accepts until the backlog is empty, and the loop that happens to be awake can take a whole burst
// of connections, leaving the other workers idle: a class would see its requests served one after
// another by a worker blocked in hold_ms, hiding the races it came to see. A burst suspends the
// turns (AcceptTurn::share): with 32 connections per loop waiting in the kernel's queue, a loop
// accepts its share of them, at most AcceptTurn::kMaxBatch, per wake-up until the queue is drained.
//
// Limits. A worker holds at most WorkerShared::max_connections connections (--worker-connections,
// counted out by the screened connection's close hook): at the cap its loops stop accepting, so the
// kernel hands new connections to the workers with room, or keeps them in the listen backlog until
// one closes here (nginx's accept_mutex also stops a nearly full worker from competing). We don't
// accept and answer 503 instead: evhttp 2.1 gives no hook to refuse a connection before it is an
// evhttp_connection, a 503 could only go out once the client had sent a request (a flood of idle
// connections never does), and each refused connection would hold a descriptor meanwhile.
// When accept() fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the
// socket stays readable, and libevent's listener would call accept() again at once for as long
// as it lasts (a core busy, nothing served): the loop stops accepting for kAcceptBackoff, or
// until one of its connections closes, and logs once per episode (nginx waits 500 ms too).
//
// Simple requests. A request without a body that one read brings whole to an idle keep-alive
// connection, with none of the headers that change evhttp's framing (simple_request.h), is
// answered without evhttp: the screened connection hands it to serve_simple(), which calls the
// Api as serve() does and formats the bytes evhttp would have written. That saves evhttp's
// request object, its header parsing and copying, its printf-built response head, and an
// EPOLL_CTL_MOD per request (evhttp disables reading for each request and enables it again; see
// docs/performance.md for what it saves). It is declined (evhttp answers as
// before) while stopping, without keep-alive, and with the access log on, where evhttp's view of
// the request is what the log prints. An answer the socket did not take whole counts as in
// flight until its rest went out, so a graceful stop waits for it as for evhttp's replies.
//
// Create after fork(), one per thread; run() on that thread only.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "accept_turn.h"
#include "app/api.h"
#include "app/scoreboard.h"
#include "os/unique_fd.h"
#include "screened_connection.h"

struct event_base;
struct evhttp;
struct evhttp_request;
struct evconnlistener;
struct event;
struct bufferevent;

namespace forklock {

// What the threads of one worker share.
struct WorkerShared {
    const Api* api = nullptr;
    Scoreboard* scoreboard = nullptr;
    std::size_t slot = 0;
    std::function<bool()> should_stop;  // polled by every loop's tick
    std::function<void()> housekeeping; // called by loop 0's tick
    std::uint32_t max_connections = 0;  // per worker, all its loops; 0 = no cap
    std::atomic<std::uint64_t> requests{0};
    ConnectionTimeouts timeouts;                   // see screened_connection.h
    std::chrono::milliseconds drain_limit{30'000}; // a graceful stop's longest wait
    // Each loop's eventfd, added as the loops are made (before they run): a write wakes the loop
    // to ask yields_to_step() again (wake_loops, called when this worker parks a request).
    std::vector<int> wake_fds;
};

// wake_loops: wakes every loop of `shared` (thread-safe: writes to their eventfds).
void wake_loops(const WorkerShared& shared) noexcept;

class HttpLoop final {
public:
    static constexpr std::size_t kMaxHeaderBytes = 8 * 1024; // JSON 431 above this
    static constexpr std::size_t kMaxBodyBytes = 64 * 1024;  // JSON 413 above this
    static constexpr long kHardMaxHeaderBytes = 64 * 1024;   // evhttp's own 4xx above this
    static constexpr long kHardMaxBodyBytes = 1024 * 1024;

    // Throws std::runtime_error if libevent can't set the loop up.
    HttpLoop(int listen_fd, std::size_t index, WorkerShared& shared);
    ~HttpLoop();
    HttpLoop(const HttpLoop&) = delete;
    HttpLoop& operator=(const HttpLoop&) = delete;

    // Serves until a graceful stop has drained this loop: every connection it accepted answered
    // or closed idle (ConnectionDrain), or the drain limit passed.
    void run();

private:
    static void on_request(evhttp_request* req, void* self);
    static void on_complete(evhttp_request* req, void* self);
    void reply_done();
    [[nodiscard]] bool drained() const noexcept;
    [[nodiscard]] std::int64_t drain_limit_ns() const noexcept
    {
        return std::chrono::nanoseconds(shared_.drain_limit).count();
    }
    void end_if_drained();
    static bufferevent* on_connection(event_base* base, void* self);
    static void on_tick(int fd, short what, void* self);
    static void on_reenable(int fd, short what, void* self);
    static void on_watch(int fd, short what, void* self);
    static void on_accept_error(evconnlistener* listener, void* http);
    static void on_backoff(int fd, short what, void* self);
    static void on_wake(int fd, short what, void* self);
    bool yields_to_step() const noexcept;
    void serve(evhttp_request* req);
    bool serve_simple(const SimpleRequest& simple, bool from_loopback, std::string& out);
    std::string_view http_date();
    void send(evhttp_request* req, const Response& response);
    static void write_through(bufferevent* bev);
    void tick();
    void begin_stop();
    void accept_again();
    void accepted();
    void stop_accepting();
    [[nodiscard]] bool at_cap() const noexcept;
    void connection_closed();
    void resume_below_cap();
    void back_off(int error);

    std::size_t index_;
    WorkerShared& shared_;
    ConnectionDrain drain_; // before http_: its connections leave it as evhttp frees them
    std::unique_ptr<event_base, void (*)(event_base*)> base_;
    std::unique_ptr<evhttp, void (*)(evhttp*)> http_;
    std::unique_ptr<event, void (*)(event*)> tick_;
    std::unique_ptr<event, void (*)(event*)> reenable_;
    UniqueFd watch_fd_; // a dup of the listening socket: its own epoll entry, edge-triggered
    std::unique_ptr<event, void (*)(event*)> watch_;
    std::unique_ptr<event, void (*)(event*)> backoff_;
    evconnlistener* listener_ = nullptr; // owned by http_
    int listen_fd_;
    bool accepting_ = true;
    bool backing_off_ = false;    // accept() failed (EMFILE...): wait for kAcceptBackoff or a close
    bool episode_logged_ = false; // the current run of failed accepts was logged
    bool paused_at_cap_ = false;  // stopped at max_connections: a close (or the tick) resumes
    std::uint32_t batch_ = 0;     // connections accepted since the listener was last enabled
    AcceptTurn turn_;
    std::size_t in_flight_ = 0;
    std::int64_t date_second_ = -1; // http_date()'s cache: the second date_ was formatted for
    std::string date_;
    bool stopping_ = false;
    std::int64_t stop_started_ns_ = 0;
    // Wakes the loop when its worker parks a request in step mode: a loop left accepting would
    // otherwise take the next increment (B) onto A's worker before it asks yields_to_step().
    UniqueFd wake_fd_;
    std::unique_ptr<event, void (*)(event*)> wake_;
};

} // namespace forklock
