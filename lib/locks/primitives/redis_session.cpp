#include "locks/primitives/redis_session.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>
#include <hiredis/hiredis.h>

namespace forklock {
namespace {

// KEYS[1] lock, KEYS[2] fence; ARGV[1] value, ARGV[2] lease in ms. The token, or 0.
constexpr const char* kLockScript =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
    "return redis.call('INCR', KEYS[2]) end return 0";
// KEYS[1] lock; ARGV[1] value. 1 when it was ours and is deleted, else 0.
constexpr const char* kUnlockScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";

constexpr std::string_view kPrefix = "forklock:{";
constexpr std::string_view kLockSuffix = "}:lock";

int parse_int(std::string_view text, int low, int high, std::string_view what, std::string_view url)
{
    int value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < low ||
        value > high)
        throw std::invalid_argument(fmt::format("redis URL '{}': {} '{}' is not a number {}..{}",
                                                url, what, text, low, high));
    return value;
}

RedisAddress parse_unix(std::string_view rest, std::string_view url)
{
    RedisAddress a;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        const std::string_view query = rest.substr(q + 1);
        if (query.substr(0, 3) != "db=")
            throw std::invalid_argument(
                fmt::format("redis URL '{}': the only query is ?db=N", url));
        a.db = parse_int(query.substr(3), 0, 1 << 16, "database", url);
        rest = rest.substr(0, q);
    }
    if (rest.empty() || rest.front() != '/')
        throw std::invalid_argument(
            fmt::format("redis URL '{}': a Unix socket is an absolute path", url));
    a.socket = std::string(rest);
    return a;
}

RedisAddress parse_tcp(std::string_view rest, std::string_view url)
{
    RedisAddress a;
    if (rest.find('@') != std::string_view::npos)
        throw std::invalid_argument(fmt::format(
            "redis URL '{}': passwords are not supported (use a Unix socket or loopback)", url));
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        a.db = parse_int(rest.substr(slash + 1), 0, 1 << 16, "database", url);
        rest = rest.substr(0, slash);
    }
    std::string_view port;
    if (!rest.empty() && rest.front() == '[') { // [IPv6]:port
        const auto close = rest.find(']');
        if (close == std::string_view::npos)
            throw std::invalid_argument(fmt::format("redis URL '{}': no ']' after '['", url));
        a.host = std::string(rest.substr(1, close - 1));
        rest = rest.substr(close + 1);
        if (!rest.empty() && rest.front() != ':')
            throw std::invalid_argument(fmt::format("redis URL '{}': ':' after ']'", url));
        if (!rest.empty()) port = rest.substr(1);
    } else {
        const auto colon = rest.find(':');
        a.host = std::string(rest.substr(0, colon));
        if (colon != std::string_view::npos) port = rest.substr(colon + 1);
    }
    if (a.host.empty()) throw std::invalid_argument(fmt::format("redis URL '{}': no host", url));
    if (!port.empty() || rest.ends_with(':')) a.port = parse_int(port, 1, 65535, "port", url);
    return a;
}

// NoSigpipe: while it lives, a write to a socket Redis closed fails with EPIPE instead of
// killing the process (hiredis writes with write(2), not send(MSG_NOSIGNAL); a library must not
// ask its program to ignore SIGPIPE). SIGPIPE is blocked for this thread, and one it raised is
// taken off the thread's pending set before the old mask comes back (libpq's way).
class NoSigpipe {
public:
    NoSigpipe() noexcept
    {
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
        pthread_sigmask(SIG_BLOCK, &pipe, &old_);
    }
    ~NoSigpipe()
    {
        sigset_t pending;
        sigpending(&pending);
        if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
            sigset_t pipe;
            sigemptyset(&pipe);
            sigaddset(&pipe, SIGPIPE);
            const timespec now{0, 0};
            while (sigtimedwait(&pipe, nullptr, &now) < 0 && errno == EINTR) {}
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    NoSigpipe(const NoSigpipe&) = delete;
    NoSigpipe& operator=(const NoSigpipe&) = delete;

private:
    sigset_t old_;
    bool was_pending_ = false;
};

// closed_by_server: an idle connection (no request outstanding) that has something to read was
// closed by Redis (a restart, CLIENT KILL, its idle `timeout`): EOF, or an error it sent before
// closing. One poll() that does not wait.
bool closed_by_server(const redisContext* c) noexcept
{
    pollfd p{c->fd, POLLIN | POLLRDHUP, 0};
    return ::poll(&p, 1, 0) != 0;
}

} // namespace

RedisAddress parse_redis_url(std::string_view url)
{
    if (url.starts_with("redis://")) return parse_tcp(url.substr(8), url);
    if (url.starts_with("unix://")) return parse_unix(url.substr(7), url);
    if (url.starts_with("/")) return parse_unix(url, url);
    throw std::invalid_argument(fmt::format(
        "redis URL '{}': not redis://HOST[:PORT][/DB], unix:///PATH[?db=N] or /PATH", url));
}

void RedisSession::ReplyDeleter::operator()(redisReply* r) const noexcept { freeReplyObject(r); }

RedisSession::~RedisSession() { close(); }

std::string RedisSession::lock_key(std::string_view key)
{
    return fmt::format("{}{}{}", kPrefix, key, kLockSuffix);
}
std::string RedisSession::fence_key(std::string_view key)
{
    return fmt::format("{}{}}}:fence", kPrefix, key);
}

void RedisSession::abandon() noexcept
{
    close(); // redisFree sends nothing: it closes this process's copy of the socket
}

void RedisSession::close() noexcept
{
    if (ctx_ != nullptr) redisFree(ctx_);
    ctx_ = nullptr;
}

void RedisSession::fail(std::string_view what)
{
    std::string reason = ctx_ != nullptr && ctx_->err != 0 ? ctx_->errstr : "";
    close();
    throw LockServerError(fmt::format("redis: {}{}{}", what, reason.empty() ? "" : ": ", reason));
}

redisContext* RedisSession::connection()
{
    if (ctx_ != nullptr && closed_by_server(ctx_)) close(); // reconnect now, not fail this call
    if (ctx_ != nullptr) return ctx_;
    const timeval timeout{kTimeoutMs / 1000, (kTimeoutMs % 1000) * 1000};
    const std::string where = address_.socket.empty()
                                  ? fmt::format("{}:{}", address_.host, address_.port)
                                  : address_.socket;
    ctx_ = address_.socket.empty()
               ? redisConnectWithTimeout(address_.host.c_str(), address_.port, timeout)
               : redisConnectUnixWithTimeout(address_.socket.c_str(), timeout);
    if (ctx_ == nullptr) throw LockServerError("redis: out of memory connecting to " + where);
    if (ctx_->err != 0) fail("cannot connect to " + where);
    if (redisSetTimeout(ctx_, timeout) != REDIS_OK) fail("cannot set a timeout on " + where);
    if (address_.db != 0) run({"SELECT", std::to_string(address_.db)});
    load_scripts();
    return ctx_;
}

void RedisSession::load_scripts()
{
    lock_sha_ = run({"SCRIPT", "LOAD", kLockScript})->str;
    unlock_sha_ = run({"SCRIPT", "LOAD", kUnlockScript})->str;
}

RedisSession::Reply RedisSession::run(const std::vector<std::string_view>& argv)
{
    redisContext* c = connection();
    std::vector<const char*> args;
    std::vector<std::size_t> lengths;
    for (const auto a : argv) {
        args.push_back(a.data());
        lengths.push_back(a.size());
    }
    const NoSigpipe guard;
    Reply r(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lengths.data())));
    if (!r) fail(fmt::format("{} failed", argv.front()));
    if (r->type == REDIS_REPLY_ERROR && std::string_view(r->str).starts_with("NOSCRIPT"))
        return r; // run_script sends the script itself
    if (r->type == REDIS_REPLY_ERROR) {
        const std::string message = r->str;
        close();
        throw LockServerError(fmt::format("redis: {}: {}", argv.front(), message));
    }
    return r;
}

RedisSession::Reply RedisSession::run_script(const std::string& sha, const char* script,
                                             const std::vector<std::string_view>& numkeys_keys_args)
{
    connection(); // loads the scripts, so `sha` is set
    std::vector<std::string_view> argv{"EVALSHA", sha};
    argv.insert(argv.end(), numkeys_keys_args.begin(), numkeys_keys_args.end());
    Reply r = run(argv);
    if (r->type != REDIS_REPLY_ERROR) return r;
    argv[0] = "EVAL";
    argv[1] = script;
    return run(argv);
}

void RedisSession::ping() { run({"PING"}); }

std::uint64_t RedisSession::try_lock(std::string_view key, std::string_view value,
                                     std::int64_t lease_ms)
{
    const std::string lock = lock_key(key), fence = fence_key(key);
    Reply r =
        run_script(lock_sha_, kLockScript, {"2", lock, fence, value, std::to_string(lease_ms)});
    return r->type == REDIS_REPLY_INTEGER ? static_cast<std::uint64_t>(r->integer) : 0;
}

bool RedisSession::unlock(std::string_view key, std::string_view value)
{
    const std::string lock = lock_key(key);
    Reply r = run_script(unlock_sha_, kUnlockScript, {"1", lock, value});
    return r->type == REDIS_REPLY_INTEGER && r->integer == 1;
}

bool RedisSession::holds(std::string_view key, std::string_view value)
{
    Reply r = run({"GET", lock_key(key)});
    return r->type == REDIS_REPLY_STRING && std::string_view(r->str, r->len) == value;
}

std::vector<RedisHolder> RedisSession::holders()
{
    std::vector<RedisHolder> out;
    const std::string pattern = fmt::format("{}*{}", kPrefix, kLockSuffix);
    std::string cursor = "0";
    do {
        Reply r = run({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
        cursor.assign(r->element[0]->str, r->element[0]->len);
        const redisReply* keys = r->element[1];
        for (std::size_t i = 0; i < keys->elements; ++i) {
            const std::string_view name(keys->element[i]->str, keys->element[i]->len);
            RedisHolder h;
            h.key = std::string(
                name.substr(kPrefix.size(), name.size() - kPrefix.size() - kLockSuffix.size()));
            Reply value = run({"GET", name});
            if (value->type != REDIS_REPLY_STRING) continue; // expired since SCAN
            h.value.assign(value->str, value->len);
            h.ttl_ms = run({"PTTL", name})->integer;
            if (h.ttl_ms < 0) continue; // expired since GET (-2), or no lease (-1: not ours)
            Reply fence = run({"GET", fence_key(h.key)});
            if (fence->type == REDIS_REPLY_STRING) h.fence = std::strtoull(fence->str, nullptr, 10);
            out.push_back(std::move(h));
        }
    } while (cursor != "0");
    return out;
}

} // namespace forklock
