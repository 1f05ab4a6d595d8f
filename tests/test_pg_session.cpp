// PgSession against a fake PostgreSQL on a Unix socket that speaks just enough of the protocol
// (v3: startup, one simple query, an ErrorResponse) to show what a real one cannot be made to do
// on cue: send a FATAL message and keep the connection open, as a backend does for the moment
// between its goodbye and its close.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "harness/temp_dir.h"
#include "harness/wait.h"
#include "locks/primitives/pg_session.h"
#include "os/unique_fd.h"

using namespace forklock;
using namespace forklock::harness;
using namespace std::chrono_literals;

namespace {

// A message: type byte, big-endian int32 length (itself included), body.
std::string message(char type, const std::string& body)
{
    const std::uint32_t n = static_cast<std::uint32_t>(body.size() + 4);
    std::string m(1, type);
    for (int shift = 24; shift >= 0; shift -= 8) m += static_cast<char>((n >> shift) & 0xff);
    return m + body;
}

std::string int16(int v)
{
    return {static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}
std::string int32(std::int32_t v)
{
    const auto u = static_cast<std::uint32_t>(v);
    return int16(static_cast<int>(u >> 16)) + int16(static_cast<int>(u & 0xffff));
}
std::string cstr(const char* s) { return std::string(s) + '\0'; }

// Reads one length-prefixed message (with or without a type byte); false at EOF.
bool read_message(int fd, bool typed)
{
    char head[5];
    const std::size_t head_size = typed ? 5 : 4;
    if (::recv(fd, head, head_size, MSG_WAITALL) != static_cast<ssize_t>(head_size)) return false;
    const unsigned char* len = reinterpret_cast<unsigned char*>(head + (typed ? 1 : 0));
    std::size_t left = ((std::size_t{len[0]} << 24) | (std::size_t{len[1]} << 16) |
                        (std::size_t{len[2]} << 8) | len[3]) -
                       4;
    std::string body(left, '\0');
    return left == 0 || ::recv(fd, body.data(), left, MSG_WAITALL) == static_cast<ssize_t>(left);
}

bool send_all(int fd, const std::string& bytes)
{
    return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
}

// FakeServer: accepts one session, answers its startup and one query with the boolean true, then
// sends a FATAL ErrorResponse when told to and keeps the connection open until destroyed.
class FakeServer {
public:
    FakeServer() : listener_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0))
    {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        const std::string path = (dir_.path() / ".s.PGSQL.5432").string();
        std::strcpy(addr.sun_path, path.c_str());
        if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listener_.get(), 1) != 0)
            throw std::runtime_error("FakeServer: bind/listen failed");
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeServer()
    {
        done_ = true;
        ::shutdown(listener_.get(), SHUT_RDWR);
        thread_.join();
    }
    std::string conninfo() const
    {
        return fmt::format("host={} port=5432 user=fake dbname=fake sslmode=disable "
                           "gssencmode=disable",
                           dir_.path().string());
    }
    bool answered() const { return answered_.load(); }
    void send_fatal() { fatal_asked_ = true; }
    bool fatal_sent() const { return fatal_sent_.load(); }

private:
    void serve()
    {
        UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (c.get() < 0 || !read_message(c.get(), false)) return; // the startup packet
        const std::string ready = message('Z', "I");
        if (!send_all(c.get(), message('R', int32(0)) + ready)) return;
        if (!read_message(c.get(), true)) return; // 'Q': the query
        const std::string column = cstr("x") + int32(0) + int16(0) + int32(16) + int16(1) +
                                   int32(-1) + int16(0); // one bool
        if (!send_all(c.get(), message('T', int16(1) + column) +
                                   message('D', int16(1) + int32(1) + "t") +
                                   message('C', cstr("SELECT 1")) + ready))
            return;
        answered_ = true;
        while (!fatal_asked_ && !done_) std::this_thread::sleep_for(1ms);
        const std::string fatal = message(
            'E', "SFATAL" + std::string(1, '\0') + "VFATAL" + std::string(1, '\0') + "C57P01" +
                     std::string(1, '\0') + cstr("Mterminating connection") + '\0');
        if (!done_ && send_all(c.get(), fatal)) fatal_sent_ = true;
        while (!done_) std::this_thread::sleep_for(1ms); // the close comes only now
    }

    TempDir dir_{"forklock-fakepg"};
    UniqueFd listener_;
    std::atomic<bool> answered_{false}, fatal_asked_{false}, fatal_sent_{false}, done_{false};
    std::thread thread_;
};

} // namespace

TEST_CASE("PgSession: alive is false once a FATAL message has come, before the close",
          "[pg_session]")
{
    FakeServer server;
    PgSession session(server.conninfo());
    CHECK_FALSE(session.alive()); // not connected yet
    REQUIRE(session.try_lock(1));
    // The server thread marks its answer sent after the client may already have read it.
    REQUIRE(wait_until([&] { return server.answered(); }, 10s));
    const std::uint64_t id = session.session_id();
    CHECK(id != 0);
    CHECK(session.alive()); // nothing came: one poll()
    server.send_fatal();
    REQUIRE(wait_until([&] { return server.fatal_sent(); }, 10s));
    // On a Unix socket the bytes are in this end's buffer once send() returned; the socket is
    // still open, so only the message itself can tell.
    CHECK_FALSE(session.alive());
    CHECK(session.session_id() == 0);   // closed: the next call reconnects
    CHECK_FALSE(session.unlock(1, id)); // that session's lock went with it
}
