#pragma once
// How a key is hashed and kept in a slot: the hash that picks its partition and home position,
// and the two sides of the key's seqlock (Slot::key_words). Internal to lib/locks/table/.

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "locks/table/slot.h"

namespace forklock::slot_detail {

inline std::uint64_t hash_key(std::string_view key, std::uint64_t seed)
{
    // Eight bytes per multiply (a byte-at-a-time FNV was a fifth of a lock's cost on a short
    // key), then a murmur finaliser so both halves are well mixed (low half: home position and
    // tag, high half: partition).
    std::uint64_t h = (seed + 0x9e3779b97f4a7c15ull) ^ key.size();
    std::size_t i = 0;
    for (; i + 8 <= key.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, key.data() + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    if (const std::size_t rest = key.size() - i; rest != 0) {
        // The last 1..7 bytes without a variable-length memcpy (a libc call and a store-forwarding
        // stall that cost more than the rest of the hash). The length is already in h, so
        // overlapping reads still tell different keys of one length apart.
        const auto* b = reinterpret_cast<const unsigned char*>(key.data());
        std::uint64_t w;
        if (key.size() >= 8) {
            std::memcpy(&w, b + key.size() - 8, 8);
            w >>= 8 * (8 - rest);
        } else if (rest >= 4) {
            std::uint32_t lo, hi;
            std::memcpy(&lo, b, 4);
            std::memcpy(&hi, b + rest - 4, 4);
            w = std::uint64_t{hi} << 32 | lo;
        } else {
            w = std::uint64_t{b[0]} | std::uint64_t{b[rest / 2]} << 8 |
                std::uint64_t{b[rest - 1]} << 16;
        }
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

// The `n`th 8-byte word of `key` as the slot stores it: its bytes in memory order, the last word
// padded with zeros. (Not a memcpy of min(8, rest) bytes: a variable-length copy into a word
// and the load of that word stalled store forwarding, the costliest instruction of a miss.)
static_assert(std::endian::native == std::endian::little, "key words are assembled little-end");
inline std::uint64_t key_word(std::string_view key, std::size_t n)
{
    const std::size_t at = 8 * n;
    std::uint64_t w = 0;
    if (key.size() - at >= 8) {
        std::memcpy(&w, key.data() + at, 8);
        return w;
    }
    for (std::size_t i = 0; at + i < key.size(); ++i)
        w |= std::uint64_t{static_cast<unsigned char>(key[at + i])} << (8 * i);
    return w;
}

// store_key, key_matches: the two sides of the key's seqlock (Slot::key_words).
inline void store_key(Slot& s, std::string_view key)
{
    for (std::size_t n = 0; 8 * n < key.size(); ++n)
        std::atomic_ref(s.key_words[n]).store(key_word(key, n), std::memory_order_relaxed);
    std::atomic_ref(s.key_len).store(static_cast<std::uint32_t>(key.size()),
                                     std::memory_order_relaxed);
}

inline bool key_matches(Slot& s, std::string_view key)
{
    if (std::atomic_ref(s.key_len).load(std::memory_order_relaxed) != key.size()) return false;
    for (std::size_t n = 0; 8 * n < key.size(); ++n)
        if (std::atomic_ref(s.key_words[n]).load(std::memory_order_relaxed) != key_word(key, n))
            return false;
    return true;
}

} // namespace forklock::slot_detail
