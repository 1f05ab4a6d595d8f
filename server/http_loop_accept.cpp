// HttpLoop's accept policy (http_adapter.h: "Accept turns", "Limits"): when a loop takes new
// connections, when it leaves them to its siblings or to other workers, and how it backs off when
// accept() fails. Converting requests to responses is in http_adapter.cpp.
#include "http_adapter.h"

#include <event2/event.h>
#include <event2/listener.h>

#include <sys/eventfd.h>

#include <system_error>

#include "app/log.h"
#include "listener.h"
#include "os/current_pid.h"

namespace forklock {
namespace {

constexpr timeval kTurnWait{0, 1'000};        // see "Accept turns" in the header
// How often a loop that leaves new connections to the other workers (yields_to_step) asks again.
constexpr timeval kYieldWait{0, 20'000};
constexpr timeval kNextBatch{0, 0};           // a burst: serve what we took, then take more
constexpr timeval kAcceptBackoff{0, 500'000}; // see "Limits" in the header

} // namespace

void wake_loops(const WorkerShared& shared) noexcept
{
    for (const int fd : shared.wake_fds) ::eventfd_write(fd, 1);
}

void HttpLoop::on_wake(int fd, short, void* self)
{
    eventfd_t ignored = 0;
    ::eventfd_read(fd, &ignored);
    auto* loop = static_cast<HttpLoop*>(self);
    if (!loop->accepting_ || !loop->yields_to_step()) return;
    loop->stop_accepting();
    event_add(loop->reenable_.get(), &kYieldWait); // as accept_again() yields: asks again
    event_add(loop->watch_.get(), nullptr);
}

// accepted: whether the listener goes on accepting in this wake-up (this loop's share of a
// burst), stops until the next one (a full batch), or stops until this loop's turn.
void HttpLoop::accepted()
{
    WorkerSlot& slot = shared_.scoreboard->slot(shared_.slot);
    slot.connections.fetch_add(1, std::memory_order_relaxed);
    episode_logged_ = false; // an accept worked: the next failure starts a new episode
    const bool capped = at_cap();
    const std::uint32_t backlog = capped ? 0 : accept_backlog(listen_fd_);
    const std::uint32_t share = turn_.share(backlog);
    turn_.accepted();
    if (++batch_ < share) return;
    stop_accepting();
    if (capped) {
        slot.cap_reached.fetch_add(1, std::memory_order_relaxed);
        paused_at_cap_ = true; // resume_below_cap() ends it
        return;
    }
    // In a burst, come back once the loop has served what it took (the other loops take their
    // shares meanwhile); otherwise wait for this loop's turn.
    event_add(reenable_.get(), share > 0 ? &kNextBatch : &kTurnWait);
    event_add(watch_.get(), nullptr);
}

void HttpLoop::stop_accepting()
{
    evconnlistener_disable(listener_);
    accepting_ = false;
    batch_ = 0;
    event_del(reenable_.get());
    event_del(watch_.get());
}

bool HttpLoop::at_cap() const noexcept
{
    const WorkerSlot& slot = shared_.scoreboard->slot(shared_.slot);
    return shared_.max_connections != 0 &&
           slot.connections.load(std::memory_order_relaxed) >= shared_.max_connections;
}

void HttpLoop::connection_closed()
{
    shared_.scoreboard->slot(shared_.slot).connections.fetch_sub(1, std::memory_order_relaxed);
    if (backing_off_) { // a descriptor is free again
        backing_off_ = false;
        event_del(backoff_.get());
        turn_.skip();
    }
    resume_below_cap();
    accept_again();
    end_if_drained();
}

// resume_below_cap: a loop that stopped at the cap accepts again at once when the worker is below
// it: from its own closes, and from its tick for the closes of the worker's other loops.
void HttpLoop::resume_below_cap()
{
    if (!paused_at_cap_ || at_cap()) return;
    paused_at_cap_ = false;
    turn_.skip();
    accept_again();
}

void HttpLoop::back_off(int error)
{
    stop_accepting();
    backing_off_ = true;
    event_add(backoff_.get(), &kAcceptBackoff);
    if (episode_logged_) return;
    episode_logged_ = true;
    shared_.scoreboard->slot(shared_.slot).accept_backoffs.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::warning,
        "accept() failed: {}; not accepting for {} ms or until a connection closes ({} open)",
        std::system_category().message(error), kAcceptBackoff.tv_usec / 1000,
        shared_.scoreboard->slot(shared_.slot).connections.load(std::memory_order_relaxed));
}

void HttpLoop::on_backoff(int, short, void* self)
{
    auto* loop = static_cast<HttpLoop*>(self);
    loop->backing_off_ = false;
    loop->turn_.skip();
    loop->accept_again();
}

void HttpLoop::on_watch(int, short, void* self) { static_cast<HttpLoop*>(self)->accept_again(); }

void HttpLoop::on_reenable(int, short, void* self)
{
    auto* loop = static_cast<HttpLoop*>(self);
    loop->turn_.skip(); // a turn nobody took
    loop->accept_again();
}

void HttpLoop::accept_again()
{
    if (accepting_ || stopping_ || backing_off_) return; // keep-alive requests: no syscall
    if (paused_at_cap_) return;                          // resume_below_cap() ends it
    if (!turn_.my_turn()) return; // the watch and kTurnWait's timer are still pending
    if (yields_to_step()) { // asks again at each new connection, and after kYieldWait
        event_add(reenable_.get(), &kYieldWait);
        event_add(watch_.get(), nullptr);
        return;
    }
    event_del(reenable_.get());
    event_del(watch_.get());
    evconnlistener_enable(listener_);
    accepting_ = true;
}

// yields_to_step: while this worker has a request inside step mode and another worker has none,
// new connections are left to the others (StepBoard::yields_accept): one relaxed load otherwise.
bool HttpLoop::yields_to_step() const noexcept
{
    StepBoard steps = shared_.scoreboard->steps();
    if (!steps.any_on()) return false;
    std::size_t workers = 0;
    for (std::size_t i = 0; i < kMaxWorkers; ++i) {
        const auto state = shared_.scoreboard->slot(i).state.load(std::memory_order_relaxed);
        workers += state == static_cast<std::uint32_t>(WorkerState::idle) ||
                   state == static_cast<std::uint32_t>(WorkerState::busy);
    }
    return steps.yields_accept(current_pid(), workers);
}

} // namespace forklock
