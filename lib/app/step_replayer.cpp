#include "app/step_replayer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "os/unique_fd.h"

namespace forklock {
namespace {

using Clock = std::chrono::steady_clock;

// How long a request may take to reach its next gate, or a new one to arrive.
constexpr std::chrono::seconds kSettle{5};
// How long a replayed increment waits at a gate: it gives up (503) if the replay is stuck.
constexpr int kParkTimeoutMs = 20'000;

std::string spaced(std::string_view text)
{
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto rest = text.substr(i);
        if (rest.starts_with("%20")) {
            out += ' ';
            i += 2;
        } else if (rest.starts_with("%3A") || rest.starts_with("%3a")) {
            out += ':';
            i += 2;
        } else {
            out += text[i] == '+' || text[i] == ',' ? ' ' : text[i];
        }
    }
    return out;
}

std::string host_header(const sockaddr_storage& to)
{
    char text[INET6_ADDRSTRLEN] = {};
    if (to.ss_family == AF_INET6) {
        const auto& a = reinterpret_cast<const sockaddr_in6&>(to);
        ::inet_ntop(AF_INET6, &a.sin6_addr, text, sizeof text);
        return fmt::format("[{}]:{}", text, ntohs(a.sin6_port));
    }
    const auto& a = reinterpret_cast<const sockaddr_in&>(to);
    ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
    return fmt::format("{}:{}", text, ntohs(a.sin_port));
}

// The listener's address, a wildcard one replaced by loopback.
sockaddr_storage listener_address(int listen_fd)
{
    sockaddr_storage to{};
    socklen_t length = sizeof to;
    if (::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&to), &length) != 0)
        throw ReplayError("this worker cannot name its own listener");
    if (to.ss_family == AF_INET) {
        auto& a = reinterpret_cast<sockaddr_in&>(to);
        if (a.sin_addr.s_addr == htonl(INADDR_ANY)) a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (to.ss_family == AF_INET6) {
        auto& a = reinterpret_cast<sockaddr_in6&>(to);
        if (IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr)) a.sin6_addr = in6addr_loopback;
    } else {
        throw ReplayError("the listener is not a TCP socket");
    }
    return to;
}

ReplayAnswer exchange(const sockaddr_storage& to, const std::string& request,
                      std::chrono::milliseconds timeout)
{
    UniqueFd fd(::socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const timeval tv{static_cast<time_t>(timeout.count() / 1000),
                     static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    if (fd.get() < 0 || ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to),
                  to.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in)) != 0 ||
        ::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size()))
        return {};
    std::string reply;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd.get(), buffer, sizeof buffer, 0)) > 0;)
        reply.append(buffer, static_cast<std::size_t>(n));
    ReplayAnswer answer;
    const auto head_end = reply.find("\r\n\r\n");
    if (!reply.starts_with("HTTP/1.") || reply.size() < 12 || head_end == std::string::npos)
        return {};
    answer.status = std::atoi(reply.c_str() + 9);
    answer.body = reply.substr(head_end + 4);
    return answer;
}

} // namespace

std::string ReplayMove::text() const { return fmt::format("{}:{}", name, step_verb(until)); }

std::vector<ReplayMove> parse_step_schedule(std::string_view text)
{
    constexpr std::size_t kMaxMoves = 64;
    std::vector<ReplayMove> moves;
    std::istringstream in(spaced(text));
    for (std::string item; in >> item;) {
        const auto colon = item.find(':');
        if (colon != 1 || (item[0] != 'A' && item[0] != 'B'))
            throw std::invalid_argument(fmt::format(
                "'{}' is not NAME:STEP with NAME A or B (for example A:read)", item.substr(0, 40)));
        const auto point = point_of_verb(std::string_view(item).substr(2));
        if (!point)
            throw std::invalid_argument(fmt::format(
                "'{}' is not a step: use lock, read, write, unlock or done", item.substr(2, 40)));
        if (moves.size() == kMaxMoves)
            throw std::invalid_argument(fmt::format("more than {} steps", kMaxMoves));
        moves.push_back({item[0], *point});
    }
    if (moves.empty())
        throw std::invalid_argument("the schedule is empty: give steps such as 'A:read B:read "
                                    "A:write B:write'");
    return moves;
}

SendIncrement send_to_listener(int listen_fd, std::chrono::milliseconds timeout)
{
    const sockaddr_storage to = listener_address(listen_fd);
    return [to, timeout](const std::string& key) {
        return exchange(to,
                        fmt::format("POST /counter/{}/increment?step_timeout_ms={} HTTP/1.1\r\n"
                                    "Host: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                    key, kParkTimeoutMs, host_header(to)),
                        timeout);
    };
}

StepReplayer::StepReplayer(StepBoard board, std::string key, SendIncrement send)
    : board_(board), key_(std::move(key)), send_(std::move(send))
{
}

ReplayOutcome StepReplayer::run(const std::vector<ReplayMove>& moves)
{
    if (!board_.turn_on(key_))
        throw ReplayError(fmt::format("{} keys are in step mode already", kStepKeys));
    std::vector<std::future<ReplayAnswer>> sent;
    struct TurnOff { // first to go: opens every gate before the futures wait for their answers
        StepBoard& board;
        const std::string& key;
        ~TurnOff() { board.turn_off(key); }
    } turn_off{board_, key_};
    ReplayOutcome out;
    for (const char name : {'A', 'B'}) {
        sent.push_back(std::async(std::launch::async, send_, key_));
        if (!settled(name, true))
            throw ReplayError(fmt::format(
                "increment {} did not reach step mode within {} s: a replay needs two free "
                "worker threads besides the one answering (-w 2 --threads 2, or -w 3)",
                name, kSettle.count()));
    }
    for (const auto& m : moves) advance(m, out);
    finish();
    out.recorded = board_.schedule(key_);
    for (auto& answer : sent) out.answers.push_back(answer.get());
    return out;
}

// The request `name` once it is parked or waits inside lock() for a holder; nullopt once it has
// finished (or, with must_exist, after kSettle without it). Inside lock() with no request of the
// key holding it, a request is on its way to a free lock (a busy machine can catch it there), so
// it is looked at again, until kSettle.
std::optional<ParkedRequest> StepReplayer::settled(char name, bool must_exist)
{
    std::optional<ParkedRequest> in_lock;
    for (const auto end = Clock::now() + kSettle; Clock::now() < end;) {
        std::optional<ParkedRequest> found;
        for (auto& r : board_.requests())
            if (r.key == key_ && r.letter == name) found = std::move(r);
        if (!found && !must_exist) return std::nullopt;
        if (found && found->phase == StepPhase::parked) return found;
        if (found && found->phase == StepPhase::in_lock) {
            if (holder(*found)) return found;
            in_lock = found;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (in_lock) return in_lock; // waits for a holder outside step mode
    if (must_exist) return std::nullopt;
    throw ReplayError(fmt::format("request {} did not reach its next gate within {} s", name,
                                  kSettle.count()));
}

std::optional<ParkedRequest> StepReplayer::holder(const ParkedRequest& waiter) const
{
    for (auto& r : board_.requests())
        if (r.key == key_ && r.id != waiter.id && r.phase != StepPhase::in_lock &&
            r.point >= StepPoint::holds && r.point <= StepPoint::wrote)
            return std::move(r);
    return std::nullopt;
}

std::string StepReplayer::holder_name(const ParkedRequest& waiter) const
{
    if (const auto r = holder(waiter)) return fmt::format("{} (pid {})", r->letter, r->pid);
    return "another request";
}

void StepReplayer::advance(const ReplayMove& m, ReplayOutcome& out)
{
    for (auto r = settled(m.name, false); r && r->point <= m.until; r = settled(m.name, false)) {
        if (r->phase == StepPhase::in_lock) {
            out.blocked.push_back({m.text(), fmt::format("{} waits inside lock() for the lock "
                                                         "held by {}",
                                                         m.name, holder_name(*r))});
            return;
        }
        const auto result = board_.step(r->id, kSettle, r->point);
        if (result.status != StepResult::Status::stepped &&
            result.status != StepResult::Status::in_lock)
            throw ReplayError(fmt::format("{} could not be stepped", m.text()));
    }
}

// finish: both to the end, A first; a request waiting inside lock() goes on by itself once the
// other unlocks.
void StepReplayer::finish()
{
    for (const auto end = Clock::now() + 2 * kSettle; Clock::now() < end;) {
        const auto all = board_.requests();
        bool any = false, stepped = false;
        for (const char name : {'A', 'B'})
            for (const auto& r : all) {
                if (r.key != key_ || r.letter != name) continue;
                any = true;
                if (!stepped && r.phase == StepPhase::parked)
                    stepped = board_.step(r.id, kSettle, r.point).status ==
                              StepResult::Status::stepped;
            }
        if (!any) return;
        if (!stepped) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    throw ReplayError("the replayed increments did not finish within 10 s");
}

} // namespace forklock
