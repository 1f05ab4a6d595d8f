#include "http_connections.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include <stdexcept>

namespace forklock {

HttpConnections::HttpConnections(event_base* base, std::function<void()> closed)
    : adopt_(event_new(base, -1, 0, on_adopt, this), event_free), closed_(std::move(closed))
{
    if (!adopt_) throw std::runtime_error("event_new(adopt) failed");
}

HttpConnections::~HttpConnections()
{
    for (bufferevent* bev : fresh_) bufferevent_decref(bev);
}

void HttpConnections::track(bufferevent* bev)
{
    fresh_.reserve(fresh_.size() + 1); // may throw before we take the reference, not after
    bufferevent_incref(bev);
    fresh_.push_back(bev);
    ++open_;
    if (fresh_.size() == 1) event_active(adopt_.get(), EV_TIMEOUT, 0);
}

void HttpConnections::on_adopt(int, short, void* self)
{
    static_cast<HttpConnections*>(self)->adopt();
}

void HttpConnections::adopt() noexcept
{
    std::vector<bufferevent*> fresh;
    fresh.swap(fresh_);
    for (bufferevent* bev : fresh) {
        void* connection = nullptr;
        bufferevent_getcb(bev, nullptr, nullptr, nullptr, &connection);
        if (connection != nullptr)
            evhttp_connection_set_closecb(static_cast<evhttp_connection*>(connection), on_close,
                                          this);
        bufferevent_decref(bev); // the last reference when evhttp already freed it
        if (connection == nullptr) count_closed();
    }
}

void HttpConnections::on_close(evhttp_connection*, void* self)
{
    static_cast<HttpConnections*>(self)->count_closed();
}

void HttpConnections::count_closed() noexcept
{
    --open_;
    if (closed_) closed_();
}

} // namespace forklock
