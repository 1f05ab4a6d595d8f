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
    auto hex = b.substr(kCheckAt, kCheckDigits);
    bool lower_hex = std::all_of(hex.begin(), hex.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
    if (!seq || !value || !check || !lower_hex) return std::nullopt;
    Slot s{*seq, *value};
    if (check_of(s) != *check) return std::nullopt;
    return s;
}

std::string encode_file(std::uint64_t value)
{
    return pad_line(std::string(kHeader), kHeaderSize) + encode_slot({1, value}) +
           encode_slot({0, 0});
}

std::optional<State> decode_file(std::string_view bytes)
{
    std::optional<State> best;
    for (std::size_t i = 0; i < kSlots; ++i) {
        if (bytes.size() < slot_offset(i) + kSlotSize) break;
        auto s = decode_slot(bytes.substr(slot_offset(i), kSlotSize));
        if (s && (!best || s->seq > best->seq)) best = State{s->value, s->seq, i};
    }
    if (best) return best;
    return decode_format1(bytes);
}

} // namespace forklock::counter_file
