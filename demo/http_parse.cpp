// parse_http_response: the pure half of http_client, testable without sockets.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "http_client.h"

namespace forklock::demo {
namespace {

bool iequals(std::string_view a, std::string_view b)
{
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

std::string_view trim(std::string_view text)
{
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

// The value of header `name` in the header block, or nullopt.
std::optional<std::string_view> header(std::string_view head, std::string_view name)
{
    for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
        const std::size_t start = pos + 2;
        const std::size_t end = std::min(head.find("\r\n", start), head.size());
        const std::string_view line = head.substr(start, end - start);
        const std::size_t colon = line.find(':');
        if (colon != std::string_view::npos && iequals(trim(line.substr(0, colon)), name))
            return trim(line.substr(colon + 1));
        pos = end < head.size() ? end : std::string_view::npos;
    }
    return std::nullopt;
}

std::size_t parse_size(std::string_view text, int base)
{
    std::size_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (error != std::errc() || end == text.data()) throw HttpError("bad length in response");
    return value;
}

int parse_status(std::string_view head)
{
    // "HTTP/1.1 200 OK"
    if (head.substr(0, 5) != "HTTP/" || head.size() < 12) throw HttpError("not an HTTP response");
    return static_cast<int>(parse_size(head.substr(9, 3), 10));
}

// Decodes a chunked body; nullopt until the last (zero) chunk has arrived.
std::optional<std::string> dechunk(std::string_view raw)
{
    std::string body;
    for (int chunks = 0; chunks < 1'000'000; ++chunks) {
        const std::size_t line_end = raw.find("\r\n");
        if (line_end == std::string_view::npos) return std::nullopt;
        const std::string_view size_text = raw.substr(0, raw.find_first_of(";\r"));
        const std::size_t size = parse_size(trim(size_text), 16);
        if (size == 0) return body;
        if (raw.size() < line_end + 2 + size + 2) return std::nullopt;
        body.append(raw.substr(line_end + 2, size));
        raw.remove_prefix(line_end + 2 + size + 2);
    }
    throw HttpError("too many chunks in response");
}

} // namespace

std::optional<HttpResponse> parse_http_response(std::string_view raw, bool at_eof)
{
    const std::size_t head_end = raw.find("\r\n\r\n");
    if (head_end == std::string_view::npos) {
        if (at_eof) throw HttpError(raw.empty() ? "connection closed without a response"
                                                : "truncated response header");
        return std::nullopt;
    }
    const std::string_view head = raw.substr(0, head_end);
    const std::string_view rest = raw.substr(head_end + 4);
    HttpResponse response{parse_status(head), {}};
    const auto encoding = header(head, "Transfer-Encoding");
    if (encoding && iequals(*encoding, "chunked")) {
        auto body = dechunk(rest);
        if (!body && at_eof) throw HttpError("truncated chunked body");
        if (!body) return std::nullopt;
        response.body = std::move(*body);
        return response;
    }
    if (const auto length = header(head, "Content-Length")) {
        const std::size_t size = parse_size(*length, 10);
        if (rest.size() < size && at_eof) throw HttpError("truncated body");
        if (rest.size() < size) return std::nullopt;
        response.body = rest.substr(0, size);
        return response;
    }
    if (!at_eof) return std::nullopt;
    response.body = rest;
    return response;
}

nlohmann::json HttpResponse::json() const
{
    return nlohmann::json::parse(body, nullptr, false);
}

} // namespace forklock::demo
