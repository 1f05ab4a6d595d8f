#pragma once
// RequestScreen: a strict RFC 9112 framing check over the raw bytes of one connection, run before
// evhttp parses them. evhttp (libevent 2.1.12) is lenient where a proxy in front of forklock may
// read the same bytes differently (request smuggling): it takes the last of two Content-Length
// headers, "Content-Length: -0", chunked bodies in HTTP/1.0, obs-fold, a space before the colon.
// The screen refuses all of those with a status and a sentence naming the rule, and follows the
// framing across keep-alive (head, Content-Length body, chunked body with trailers, next request)
// so each pipelined request is checked. It never changes bytes: what it passes, evhttp parses.
//
// Rules (each refusal is 400 unless noted): the request line is method SP target SP version CRLF
// with a token method and a target of visible ASCII or bytes 0x80-0xFF (raw UTF-8, as nginx
// takes it); a version "HTTP/d.d" other than 1.0 and 1.1 is 505; field names are tokens
// followed directly by ':'; values hold no control character but HTAB; no obs-fold; every line
// ends in CRLF (no bare LF, no bare CR); one Content-Length, digits only, no overflow; one
// Transfer-Encoding, a list of codings ending in one "chunked" (a coding before it, e.g. "gzip,
// chunked", is 501: not implemented), never with Content-Length, never in HTTP/1.0; one Host, of
// URI host characters; HTTP/1.1 has a Host; chunk sizes are hex digits only (no whitespace,
// sign, underscore, "0x"; no overflow); chunk extensions are ;name[=token|"quoted"] with no
// whitespace; chunk data ends in CRLF; trailers are field lines without Content-Length,
// Transfer-Encoding or Host. What it leaves to evhttp: methods evhttp does not know, the
// target's own syntax, header and body size limits.
//
// Pure (no I/O, no clock): one object per connection, one thread; feed() the bytes as they arrive.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace forklock {

class RequestScreen final {
public:
    enum class Phase {
        idle, // between requests: no byte of the next one yet
        head, // the request line and the header fields
        body, // a Content-Length body, chunks or trailers
    };

    struct Verdict {
        enum class Kind {
            ok,        // every byte fed so far ends a complete request
            need_more, // in the middle of a request
            reject,    // the current request breaks a rule; later feeds keep rejecting
        };
        Kind kind = Kind::ok;
        // How many of the bytes of this feed may reach the parser: all of them unless rejected,
        // else those before the offending byte (they cannot complete the rejected request).
        std::size_t passed = 0;
        int status = 0;      // 400, 501 or 505 when rejected
        std::string message; // the rule, as a sentence, when rejected
    };

    // feed checks the next bytes of the connection's stream.
    Verdict feed(std::string_view bytes);

    [[nodiscard]] Phase phase() const noexcept;
    [[nodiscard]] bool rejected() const noexcept { return state_ == State::rejected; }
    // Requests whose first byte arrived / whose last byte arrived.
    [[nodiscard]] std::uint64_t requests_begun() const noexcept { return begun_; }
    [[nodiscard]] std::uint64_t requests_completed() const noexcept { return completed_; }
    // Bytes of the current request fed so far (after a rejection: those before the offending
    // byte, i.e. what the parser may hold of the rejected request).
    [[nodiscard]] std::uint64_t request_bytes() const noexcept { return request_bytes_; }

private:
    enum class State {
        method,
        target,
        version,
        request_line_lf,
        field_start,
        field_name,
        value_ows,
        value,
        field_lf,
        head_end_lf,
        length_body,
        chunk_size,
        chunk_ext_name,
        chunk_ext_value_start,
        chunk_ext_token,
        chunk_ext_quoted,
        chunk_ext_escape,
        chunk_ext_after_quote,
        chunk_size_lf,
        chunk_data,
        chunk_data_cr,
        chunk_data_lf,
        rejected,
    };

    // step consumes one byte (or, in a body, as many as `rest` allows, returned). 0 = rejected.
    std::size_t step(std::string_view rest);
    std::size_t request_line_byte(unsigned char c);
    std::size_t field_byte(unsigned char c);
    std::size_t chunk_line_byte(unsigned char c);
    std::size_t chunk_ext_byte(unsigned char c);
    std::size_t body_bytes(std::string_view rest);
    bool check_version();
    bool end_field();
    bool check_transfer_codings();
    void keep(std::string_view bytes); // into value_, up to kMaxKept
    bool end_head();
    void start_request();
    void complete_request();
    std::size_t reject(int status, std::string message);
    std::size_t reject(std::string message) { return reject(400, std::move(message)); }

    State state_ = State::method;
    bool in_request_ = false;
    bool in_trailers_ = false;
    bool http10_ = false;
    bool ext_name_seen_ = false;
    std::size_t token_length_ = 0; // of the method or the target
    std::string version_;
    std::string name_;  // lower case, cut at kMaxKept
    std::string value_; // cut at kMaxKept (value_cut_ says so)
    bool value_cut_ = false;
    bool keep_value_ = false; // the field is one whose value end_field checks
    bool has_length_ = false;
    bool has_chunked_ = false;
    bool has_host_ = false;
    std::uint64_t remaining_ = 0; // of a Content-Length body or a chunk
    std::uint64_t begun_ = 0;
    std::uint64_t completed_ = 0;
    std::uint64_t request_bytes_ = 0;
    int reject_status_ = 0;
    std::string reject_message_;
};

} // namespace forklock
