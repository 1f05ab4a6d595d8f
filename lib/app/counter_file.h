#pragma once
// The bytes of one counter file (format 2), apart from any I/O so that tests and fuzzers can feed
// it anything. 192 bytes of text:
//
//   [0, 64)    a header line; in a file migrated from format 1 it is still the old "VALUE\n"
//              followed by NUL bytes, which migration never touches
//   [64, 128)  slot 0: "SEQ VALUE CHECK\n", 20 + 20 decimal digits, 16 hex digits, space-padded
//   [128, 192) slot 1: the same
//
// A write replaces one whole slot, the one not holding the newest value, with one pwrite() of 64
// bytes within the file's first page; the value is in the valid slot with the higher SEQ. CHECK
// is a hash of SEQ and VALUE, so a slot torn by anything (a reader's copy racing the writer's, a
// write cut short) is invalid and the other slot, the previous value, is read instead. A file
// with no valid slot holds the format-1 value "VALUE\n" in its first bytes, or is corrupt.
//
// Fenced files (the server's --fencing): two more slots of 128 bytes, [192, 320) and [320, 448),
// "SEQ VALUE TOKEN CHECK\n", TOKEN being the highest fencing token that wrote the key. When either
// is valid the fenced slots alone hold the value (the newer valid one), and every later write,
// fenced or not, goes to them, carrying the token on. A format-2 file becomes fenced by its first
// fenced write, which only appends a fenced slot after the old bytes (torn: the format-2 value is
// read, as before the write). A file without fenced slots has token 0.
//
// Thread safety: pure functions.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace forklock::counter_file {

inline constexpr std::size_t kHeaderSize = 64;
inline constexpr std::size_t kSlotSize = 64;
inline constexpr std::size_t kSlots = 2;
inline constexpr std::size_t kFileSize = kHeaderSize + kSlots * kSlotSize;
inline constexpr std::size_t kFencedSlotSize = 128;
inline constexpr std::size_t kFencedFileSize = kFileSize + kSlots * kFencedSlotSize;

struct Slot {
    std::uint64_t seq = 0;
    std::uint64_t value = 0;
    std::uint64_t token = 0; // fenced slots only
};

// What a file holds. `slot` is the index of the slot with the value (0, 1: format 2; 2, 3: the
// fenced slots), nullopt for a format-1 file (seq 0): the next write goes to the other slot of
// its kind with seq + 1. `token`: the highest fencing token that wrote it (0: none).
struct State {
    std::uint64_t value = 0;
    std::uint64_t seq = 0;
    std::optional<std::size_t> slot;
    std::uint64_t token = 0;
};

constexpr bool is_fenced_slot(std::size_t index) { return index >= kSlots; }
constexpr std::size_t slot_offset(std::size_t index)
{
    return is_fenced_slot(index) ? kFileSize + (index - kSlots) * kFencedSlotSize
                                 : kHeaderSize + index * kSlotSize;
}
// next_slot: where the next write goes: the other fenced slot in a fenced file, the first fenced
// slot for a fenced write to a file without one, else the other format-2 slot.
inline std::size_t next_slot(const State& s, bool fenced = false)
{
    if (s.slot && is_fenced_slot(*s.slot)) return kSlots + (*s.slot - kSlots + 1) % kSlots;
    if (fenced) return kSlots;
    return s.slot ? (*s.slot + 1) % kSlots : 0;
}

std::string encode_slot(Slot slot);
// nullopt unless `bytes` is exactly one well-formed slot whose check matches.
std::optional<Slot> decode_slot(std::string_view bytes);
std::string encode_fenced_slot(Slot slot);
std::optional<Slot> decode_fenced_slot(std::string_view bytes);
// encode_at: `slot` encoded for the slot at `index` (format 2 or fenced).
std::string encode_at(std::size_t index, Slot slot);

// A whole new file: the header, `value` in slot 0 with seq 1, slot 1 holding seq 0; with a
// token, fenced: the fenced slots too, the first holding `value` and `token` with seq 1.
std::string encode_file(std::uint64_t value, std::uint64_t token = 0);
// The state of a file's first bytes (at most kFencedFileSize of them are looked at), nullopt if
// corrupt.
std::optional<State> decode_file(std::string_view bytes);

} // namespace forklock::counter_file
