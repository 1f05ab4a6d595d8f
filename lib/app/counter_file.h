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

struct Slot {
    std::uint64_t seq = 0;
    std::uint64_t value = 0;
};

// What a file holds. `slot` is the index of the slot with the value, nullopt for a format-1 file
// (seq 0): the next write goes to the other slot with seq + 1.
struct State {
    std::uint64_t value = 0;
    std::uint64_t seq = 0;
    std::optional<std::size_t> slot;
};

constexpr std::size_t slot_offset(std::size_t index) { return kHeaderSize + index * kSlotSize; }
inline std::size_t next_slot(const State& s) { return s.slot ? (*s.slot + 1) % kSlots : 0; }

std::string encode_slot(Slot slot);
// nullopt unless `bytes` is exactly one well-formed slot whose check matches.
std::optional<Slot> decode_slot(std::string_view bytes);

// A whole new file: the header, `value` in slot 0 with seq 1, slot 1 holding seq 0.
std::string encode_file(std::uint64_t value);
// The state of a file's first bytes (at most kFileSize of them are looked at), nullopt if corrupt.
std::optional<State> decode_file(std::string_view bytes);

} // namespace forklock::counter_file
