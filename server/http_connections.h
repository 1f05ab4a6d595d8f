#pragma once
// HttpConnections: the open connections of one HttpLoop's evhttp, counted, with a callback when
// one closes. Part of the HTTP adapter (it touches evhttp), kept apart from the request path.
//
// Why it is not simpler: libevent 2.1 tells a server about a new connection only through
// evhttp_set_bevcb, which runs before evhttp has made the evhttp_connection, and it has no
// connection count (2.2's evhttp_set_max_connections). So track() takes the bufferevent the
// bevcb hands to evhttp and holds a reference on it; a moment later (an active event, in the
// same turn of the loop, before the connection can be read) the tracker finds the connection
// as that bufferevent's callback argument (evhttp_start_read_ sets it to the evhttp_connection)
// and sets its close callback, which evhttp runs when it frees the connection (peer closed,
// timeout, error, Connection: close, or evhttp_free). A bufferevent evhttp freed before that
// (its callbacks are cleared by bufferevent_free) counts as closed at once.
//
// Threads: one loop's thread only. Create after the event_base, destroy before it; the closed
// callback may run from evhttp_free, so the owner must stay usable while it frees its evhttp.

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

struct event;
struct event_base;
struct bufferevent;
struct evhttp_connection;

namespace forklock {

class HttpConnections final {
public:
    // closed runs after each connection is counted out. Throws std::runtime_error when
    // libevent can't make its event.
    HttpConnections(event_base* base, std::function<void()> closed);
    ~HttpConnections();
    HttpConnections(const HttpConnections&) = delete;
    HttpConnections& operator=(const HttpConnections&) = delete;

    // track counts `bev` open: call from the bevcb with the bufferevent it returns.
    void track(bufferevent* bev);
    // open: connections tracked and not closed yet.
    [[nodiscard]] std::size_t open() const noexcept { return open_; }

private:
    static void on_adopt(int fd, short what, void* self);
    static void on_close(evhttp_connection* connection, void* self);
    void adopt() noexcept;
    void count_closed() noexcept;

    std::vector<bufferevent*> fresh_; // tracked, each with our reference, not yet adopted
    std::unique_ptr<event, void (*)(event*)> adopt_;
    std::function<void()> closed_;
    std::size_t open_ = 0;
};

} // namespace forklock
