#include "app/counter_file.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace forklock::counter_file {
namespace {

constexpr std::size_t kDigits = 20; // UINT64_MAX has 20 decimal digits
constexpr std::size_t kCheckDigits = 16;
constexpr std::size_t kValueAt = kDigits + 1;
constexpr std::size_t kCheckAt = kValueAt + kDigits + 1;
constexpr std::size_t kPadAt = kCheckAt + kCheckDigits;
static_assert(kPadAt < kSlotSize);

constexpr std::string_view kHeader =
    "forklock counter 2: lines of SEQ VALUE CHECK; newest SEQ wins";
static_assert(kHeader.size() < kHeaderSize);

std::uint64_t mix(std::uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

std::uint64_t check_of(Slot s) { return mix(s.seq ^ mix(s.value ^ 0x666f726b6c6f636bULL)); }
std::uint64_t fenced_check_of(Slot s) { return mix(s.token ^ mix(check_of(s))); }

bool lower_hex(std::string_view hex)
{
    return std::all_of(hex.begin(), hex.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

template <typename T>
std::optional<T> parse_all(std::string_view text, int base = 10)
{
    T value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

std::string pad_line(std::string text, std::size_t size)
{
    text.resize(size - 1, ' ');
    text.push_back('\n');
    return text;
}

// Format 1: "VALUE\n", then (in a file whose migration was cut short) nothing but NUL bytes.
std::optional<State> decode_format1(std::string_view bytes)
{
    bytes = bytes.substr(0, kHeaderSize);
    auto nul = bytes.find('\0');
    if (nul != std::string_view::npos) {
        if (bytes.find_first_not_of('\0', nul) != std::string_view::npos) return std::nullopt;
        bytes = bytes.substr(0, nul);
    }
    if (bytes.empty() || bytes.back() != '\n') return std::nullopt;
    bytes.remove_suffix(1);
    auto digits_only =
        std::all_of(bytes.begin(), bytes.end(), [](char c) { return c >= '0' && c <= '9'; });
    auto value = digits_only ? parse_all<std::uint64_t>(bytes) : std::nullopt;
    if (!value) return std::nullopt;
    return State{*value, 0, std::nullopt};
}

} // namespace

std::string encode_slot(Slot s)
{
    return pad_line(fmt::format("{:020} {:020} {:016x}", s.seq, s.value, check_of(s)), kSlotSize);
}

std::optional<Slot> decode_slot(std::string_view b)
{
    if (b.size() != kSlotSize || b[kDigits] != ' ' || b[kCheckAt - 1] != ' ' || b.back() != '\n')
        return std::nullopt;
    if (b.substr(kPadAt, kSlotSize - 1 - kPadAt).find_first_not_of(' ') != std::string_view::npos)
        return std::nullopt;
    auto seq = parse_all<std::uint64_t>(b.substr(0, kDigits));
    auto value = parse_all<std::uint64_t>(b.substr(kValueAt, kDigits));
    auto check = parse_all<std::uint64_t>(b.substr(kCheckAt, kCheckDigits), 16);
    if (!seq || !value || !check || !lower_hex(b.substr(kCheckAt, kCheckDigits)))
        return std::nullopt;
    Slot s{*seq, *value};
    if (check_of(s) != *check) return std::nullopt;
    return s;
}

std::string encode_fenced_slot(Slot s)
{
    return pad_line(
        fmt::format("{:020} {:020} {:020} {:016x}", s.seq, s.value, s.token, fenced_check_of(s)),
        kFencedSlotSize);
}

std::optional<Slot> decode_fenced_slot(std::string_view b)
{
    constexpr std::size_t kTokenAt = kValueAt + kDigits + 1,
                          kFencedCheckAt = kTokenAt + kDigits + 1;
    if (b.size() != kFencedSlotSize || b.back() != '\n' || b[kDigits] != ' ' ||
        b[kTokenAt - 1] != ' ' || b[kFencedCheckAt - 1] != ' ')
        return std::nullopt;
    const std::size_t pad = kFencedCheckAt + kCheckDigits;
    if (b.substr(pad, kFencedSlotSize - 1 - pad).find_first_not_of(' ') != std::string_view::npos)
        return std::nullopt;
    auto seq = parse_all<std::uint64_t>(b.substr(0, kDigits));
    auto value = parse_all<std::uint64_t>(b.substr(kValueAt, kDigits));
    auto token = parse_all<std::uint64_t>(b.substr(kTokenAt, kDigits));
    auto check = parse_all<std::uint64_t>(b.substr(kFencedCheckAt, kCheckDigits), 16);
    if (!seq || !value || !token || !check || !lower_hex(b.substr(kFencedCheckAt, kCheckDigits)))
        return std::nullopt;
    Slot s{*seq, *value, *token};
    if (fenced_check_of(s) != *check) return std::nullopt;
    return s;
}

std::string encode_at(std::size_t index, Slot slot)
{
    return is_fenced_slot(index) ? encode_fenced_slot(slot) : encode_slot(slot);
}

std::string encode_file(std::uint64_t value, std::uint64_t token)
{
    std::string file =
        pad_line(std::string(kHeader), kHeaderSize) + encode_slot({1, value}) + encode_slot({0, 0});
    if (token != 0) file += encode_fenced_slot({1, value, token}) + encode_fenced_slot({0, 0, 0});
    return file;
}

std::optional<State> decode_file(std::string_view bytes)
{
    std::optional<State> best;
    for (std::size_t i = kSlots; i < 2 * kSlots; ++i) { // fenced slots first: they win
        if (bytes.size() < slot_offset(i) + kFencedSlotSize) break;
        auto s = decode_fenced_slot(bytes.substr(slot_offset(i), kFencedSlotSize));
        if (s && (!best || s->seq > best->seq)) best = State{s->value, s->seq, i, s->token};
    }
    if (best) return best;
    for (std::size_t i = 0; i < kSlots; ++i) {
        if (bytes.size() < slot_offset(i) + kSlotSize) break;
        auto s = decode_slot(bytes.substr(slot_offset(i), kSlotSize));
        if (s && (!best || s->seq > best->seq)) best = State{s->value, s->seq, i};
    }
    if (best) return best;
    return decode_format1(bytes);
}

} // namespace forklock::counter_file
