#include "request_screen.h"

#include <algorithm>
#include <array>
#include <limits>
#include <span>
#include <vector>

#include <fmt/format.h>

namespace forklock {
namespace {

constexpr std::size_t kMaxKept = 1024;  // of a field name or value: enough for what we check
constexpr std::size_t kMaxVersion = 16; // "HTTP/" and two numbers of up to 3 digits
constexpr std::uint64_t kMaxLength = std::numeric_limits<std::uint64_t>::max() / 16;

constexpr std::array<bool, 256> make_tchar()
{
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}
constexpr std::array<bool, 256> kTchar = make_tchar();

bool is_tchar(unsigned char c) { return kTchar[c]; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
// Field values: VCHAR, SP, HTAB and obs-text; no other control character.
bool is_value_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }
// The target: visible ASCII, and bytes 0x80-0xFF as nginx takes them (a UTF-8 path sent raw). They
// frame nothing: the request line still ends at the first space, CR or LF.
bool is_target_byte(unsigned char c) { return c > 0x20 && c != 0x7f; }
// The version: visible ASCII only.
bool is_version_byte(unsigned char c) { return c > 0x20 && c < 0x7f; }

int hex_value(unsigned char c)
{
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return (x | 0x20) == (y | 0x20);
           });
}

// RFC 3986 host: reg-name, IP-literal or IPv4, and a port after ':'.
bool is_host_value(std::string_view v)
{
    static constexpr std::string_view kExtra = "-._~!$&'()*+,;=:[]%";
    return std::all_of(v.begin(), v.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return is_digit(u) || ((u | 0x20) >= 'a' && (u | 0x20) <= 'z') ||
               kExtra.find(c) != std::string_view::npos;
    });
}

// Digits only, no sign, no list, no overflow; nullopt-like flag through `ok`.
bool parse_length(std::string_view v, std::uint64_t& out)
{
    if (v.empty()) return false;
    std::uint64_t n = 0;
    for (char c : v) {
        if (!is_digit(static_cast<unsigned char>(c)) || n > kMaxLength) return false;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = n;
    return true;
}

} // namespace

RequestScreen::Phase RequestScreen::phase() const noexcept
{
    if (!in_request_) return Phase::idle;
    if (in_trailers_) return Phase::body;
    return state_ >= State::length_body && state_ < State::rejected ? Phase::body : Phase::head;
}

RequestScreen::Verdict RequestScreen::feed(std::string_view bytes)
{
    Verdict v;
    std::size_t at = 0;
    while (at < bytes.size() && state_ != State::rejected) {
        if (!in_request_) start_request();
        const std::size_t used = step(bytes.substr(at));
        if (used == 0) break;
        at += used;
        request_bytes_ += used;
    }
    if (state_ == State::rejected) {
        v.kind = Verdict::Kind::reject;
        v.passed = at;
        v.status = reject_status_;
        v.message = reject_message_;
        return v;
    }
    v.passed = at;
    v.kind = in_request_ ? Verdict::Kind::need_more : Verdict::Kind::ok;
    return v;
}

void RequestScreen::start_request()
{
    in_request_ = true;
    ++begun_;
    request_bytes_ = 0;
    token_length_ = 0;
    version_.clear();
    has_length_ = has_chunked_ = has_host_ = in_trailers_ = false;
    remaining_ = 0;
}

void RequestScreen::complete_request()
{
    in_request_ = false;
    in_trailers_ = false;
    ++completed_;
    state_ = State::method;
}

std::size_t RequestScreen::reject(int status, std::string message)
{
    state_ = State::rejected;
    reject_status_ = status;
    reject_message_ = std::move(message);
    return 0;
}

// run_of counts the leading bytes of `rest` that `ok` accepts.
template <typename Pred>
std::size_t run_of(std::string_view rest, Pred ok)
{
    std::size_t n = 0;
    while (n < rest.size() && ok(static_cast<unsigned char>(rest[n]))) ++n;
    return n;
}

std::size_t RequestScreen::step(std::string_view rest)
{
    const auto c = static_cast<unsigned char>(rest.front());
    // The bulk of a head, a byte class at a time; the state machine takes the byte after.
    if (state_ == State::target) {
        const std::size_t n = run_of(rest, is_target_byte);
        if (n > 0) return token_length_ += n, n;
    } else if (state_ == State::value) {
        const std::size_t n = run_of(rest, [](unsigned char b) { return is_value_byte(b); });
        if (n > 0) {
            if (keep_value_) keep(rest.substr(0, n));
            return n;
        }
    }
    if (state_ <= State::request_line_lf) return request_line_byte(c);
    if (state_ <= State::head_end_lf) return field_byte(c);
    if (state_ == State::length_body || state_ == State::chunk_data) return body_bytes(rest);
    return chunk_line_byte(c);
}

std::size_t RequestScreen::request_line_byte(unsigned char c)
{
    switch (state_) {
    case State::method:
        if (is_tchar(c)) return ++token_length_, 1;
        if (c == ' ' && token_length_ > 0) return token_length_ = 0, state_ = State::target, 1;
        if (c == '\r' || c == '\n')
            return reject("malformed request line: an empty line where a request line belongs");
        return reject("malformed request line: the method must be a token followed by one space");
    case State::target:
        if (is_target_byte(c)) return ++token_length_, 1;
        if (c == ' ' && token_length_ > 0) return state_ = State::version, 1;
        return reject("malformed request line: the target must be visible characters followed by "
                      "one space");
    case State::version:
        if (c == '\r') return check_version() ? (state_ = State::request_line_lf, 1) : 0;
        if (c == '\n') return reject("bare LF: the request line must end in CRLF");
        if (version_.size() >= kMaxVersion || !is_version_byte(c))
            return reject("malformed request line: the version must be HTTP/DIGIT.DIGIT");
        return version_.push_back(static_cast<char>(c)), 1;
    default:
        if (c != '\n') return reject("bare CR: the request line must end in CRLF");
        return state_ = State::field_start, 1;
    }
}

bool RequestScreen::check_version()
{
    std::string_view v = version_;
    auto digits = [](std::string_view s) {
        return !s.empty() && s.size() <= 3 &&
               std::all_of(s.begin(), s.end(), [](char c) { return is_digit(c); });
    };
    const auto dot = v.find('.');
    if (v.substr(0, 5) != "HTTP/" || dot == std::string_view::npos ||
        !digits(v.substr(5, dot - 5)) || !digits(v.substr(dot + 1)))
        return reject("malformed request line: the version must be HTTP/DIGIT.DIGIT"), false;
    if (v != "HTTP/1.1" && v != "HTTP/1.0")
        return reject(505, "HTTP version not supported: only HTTP/1.0 and HTTP/1.1"), false;
    http10_ = v == "HTTP/1.0";
    return true;
}

std::size_t RequestScreen::field_byte(unsigned char c)
{
    switch (state_) {
    case State::field_start:
        if (c == '\r') return state_ = State::head_end_lf, 1;
        if (is_tchar(c)) {
            name_.assign(1, static_cast<char>(c | 0x20));
            return state_ = State::field_name, 1;
        }
        if (c == ' ' || c == '\t')
            return reject("obs-fold: a field line may not start with "
                          "whitespace");
        if (c == '\n') return reject("bare LF: field lines must end in CRLF");
        if (c == ':') return reject("a field name may not be empty");
        return reject("a field name may hold token characters only");
    case State::field_name:
        if (is_tchar(c)) {
            if (name_.size() < kMaxKept) name_.push_back(static_cast<char>(c | 0x20));
            return 1;
        }
        if (c == ':') {
            value_.clear();
            value_cut_ = false;
            keep_value_ =
                name_ == "content-length" || name_ == "transfer-encoding" || name_ == "host";
            return state_ = State::value_ows, 1;
        }
        if (c == ' ' || c == '\t')
            return reject("no whitespace is allowed between a field name "
                          "and its colon");
        if (c == '\r' || c == '\n') return reject("a field line must have a colon");
        return reject("a field name may hold token characters only");
    case State::value_ows:
        if (c == ' ' || c == '\t') return 1;
        state_ = State::value;
        [[fallthrough]];
    case State::value:
        if (c == '\r') return state_ = State::field_lf, 1;
        if (c == '\n') return reject("bare LF: field lines must end in CRLF");
        if (!is_value_byte(c)) return reject("a field value may not hold control characters");
        if (keep_value_) {
            const char byte = static_cast<char>(c);
            keep({&byte, 1});
        }
        return 1;
    case State::field_lf:
        if (c != '\n') return reject("bare CR: field lines must end in CRLF");
        return end_field() ? (state_ = State::field_start, 1) : 0;
    default: // head_end_lf
        if (c != '\n') return reject("bare CR: the header section must end in CRLF");
        return end_head() ? 1 : 0;
    }
}

void RequestScreen::keep(std::string_view bytes)
{
    const std::size_t room = kMaxKept - std::min(kMaxKept, value_.size());
    value_.append(bytes.substr(0, room));
    if (bytes.size() > room) value_cut_ = true;
}

// check_transfer_codings: value_ as RFC 9112's list of codings. The body's length is known only
// when chunked comes last (6.3: else 400); chunked once (7); any coding before it is one this
// server does not decode, so the request is refused as not implemented (6.1: 501), as nginx does.
bool RequestScreen::check_transfer_codings()
{
    std::vector<std::string_view> codings;
    std::string_view rest(value_);
    for (;;) {
        const auto comma = rest.find(',');
        auto coding = rest.substr(0, comma);
        while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t'))
            coding.remove_prefix(1);
        while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t'))
            coding.remove_suffix(1);
        if (value_cut_ || coding.empty() || !std::all_of(coding.begin(), coding.end(), [](char c) {
                return is_tchar(static_cast<unsigned char>(c));
            }))
            return reject("malformed Transfer-Encoding: it must be a list of codings such as "
                          "\"chunked\""),
                   false;
        codings.push_back(coding);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    if (!iequals(codings.back(), "chunked"))
        return reject("Transfer-Encoding must end in chunked: otherwise the body's length cannot "
                      "be known"),
               false;
    const auto before = std::span(codings).first(codings.size() - 1);
    if (std::any_of(before.begin(), before.end(), [](auto c) { return iequals(c, "chunked"); }))
        return reject("Transfer-Encoding applies chunked more than once"), false;
    if (!before.empty())
        return reject(501, fmt::format("Transfer-Encoding {} is not implemented: this server "
                                       "decodes chunked only",
                                       before.front())),
               false;
    return true;
}

bool RequestScreen::end_field()
{
    while (!value_.empty() && (value_.back() == ' ' || value_.back() == '\t')) value_.pop_back();
    const bool framing = name_ == "content-length" || name_ == "transfer-encoding";
    if (in_trailers_ && (framing || name_ == "host"))
        return reject("a trailer may not carry Content-Length, Transfer-Encoding or Host"), false;
    if (name_ == "content-length") {
        if (has_length_) return reject("duplicate Content-Length"), false;
        if (value_cut_ || !parse_length(value_, remaining_))
            return reject("Content-Length must be digits only, one value, and fit in 64 bits"),
                   false;
        has_length_ = true;
    } else if (name_ == "transfer-encoding") {
        if (has_chunked_) return reject("duplicate Transfer-Encoding"), false;
        if (!check_transfer_codings()) return false;
        has_chunked_ = true;
    } else if (name_ == "host") {
        if (has_host_) return reject("duplicate Host"), false;
        if (value_cut_ || !is_host_value(value_))
            return reject("malformed Host: it must be a URI host and port"), false;
        has_host_ = true;
    }
    return true;
}

bool RequestScreen::end_head()
{
    if (in_trailers_) return complete_request(), true;
    if (!http10_ && !has_host_) return reject("an HTTP/1.1 request must have a Host"), false;
    if (has_chunked_ && has_length_)
        return reject("Transfer-Encoding together with Content-Length"), false;
    if (has_chunked_ && http10_) return reject("Transfer-Encoding in an HTTP/1.0 request"), false;
    if (has_chunked_) {
        remaining_ = 0;
        state_ = State::chunk_size;
        token_length_ = 0;
    } else if (remaining_ > 0) {
        state_ = State::length_body;
    } else {
        complete_request();
    }
    return true;
}

std::size_t RequestScreen::body_bytes(std::string_view rest)
{
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, rest.size()));
    remaining_ -= n;
    if (remaining_ == 0) {
        if (state_ == State::length_body)
            complete_request();
        else
            state_ = State::chunk_data_cr;
    }
    return n;
}

std::size_t RequestScreen::chunk_line_byte(unsigned char c)
{
    switch (state_) {
    case State::chunk_size:
        if (const int h = hex_value(c); h >= 0) {
            if (remaining_ > kMaxLength) return reject("the chunk size overflows 64 bits");
            remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(h);
            return ++token_length_, 1;
        }
        if (token_length_ == 0) return reject("a chunk size must be hex digits only");
        if (c == ';') return ext_name_seen_ = false, state_ = State::chunk_ext_name, 1;
        if (c == '\r') return state_ = State::chunk_size_lf, 1;
        if (c == '\n') return reject("bare LF: chunk lines must end in CRLF");
        if (c == ' ' || c == '\t') return reject("no whitespace is allowed in a chunk size line");
        return reject("a chunk size must be hex digits only");
    case State::chunk_size_lf:
        if (c != '\n') return reject("bare CR: chunk lines must end in CRLF");
        if (remaining_ == 0) {
            in_trailers_ = true;
            state_ = State::field_start;
        } else {
            state_ = State::chunk_data;
        }
        return 1;
    case State::chunk_data_cr:
        if (c != '\r') return reject("chunk data must be followed by CRLF (size mismatch)");
        return state_ = State::chunk_data_lf, 1;
    case State::chunk_data_lf:
        if (c != '\n') return reject("bare CR: chunk data must be followed by CRLF");
        token_length_ = 0;
        return state_ = State::chunk_size, 1;
    default: return chunk_ext_byte(c);
    }
}

// chunk-ext = *( ";" name [ "=" ( token / quoted-string ) ] ), without the BWS RFC 9112 allows.
std::size_t RequestScreen::chunk_ext_byte(unsigned char c)
{
    constexpr const char* kBad = "malformed chunk extension";
    switch (state_) {
    case State::chunk_ext_name:
        if (is_tchar(c)) return ext_name_seen_ = true, 1;
        if (!ext_name_seen_) return reject(kBad);
        if (c == '=') return state_ = State::chunk_ext_value_start, 1;
        if (c == ';') return ext_name_seen_ = false, 1;
        if (c == '\r') return state_ = State::chunk_size_lf, 1;
        return reject(kBad);
    case State::chunk_ext_value_start:
        if (c == '"') return state_ = State::chunk_ext_quoted, 1;
        if (is_tchar(c)) return state_ = State::chunk_ext_token, 1;
        return reject(kBad);
    case State::chunk_ext_token:
        if (is_tchar(c)) return 1;
        if (c == ';') return ext_name_seen_ = false, state_ = State::chunk_ext_name, 1;
        if (c == '\r') return state_ = State::chunk_size_lf, 1;
        return reject(kBad);
    case State::chunk_ext_quoted:
        if (c == '"') return state_ = State::chunk_ext_after_quote, 1;
        if (c == '\\') return state_ = State::chunk_ext_escape, 1;
        if (is_value_byte(c)) return 1;
        return reject(kBad);
    case State::chunk_ext_escape:
        if (is_value_byte(c)) return state_ = State::chunk_ext_quoted, 1;
        return reject(kBad);
    default: // chunk_ext_after_quote
        if (c == ';') return ext_name_seen_ = false, state_ = State::chunk_ext_name, 1;
        if (c == '\r') return state_ = State::chunk_size_lf, 1;
        return reject(kBad);
    }
}

} // namespace forklock
