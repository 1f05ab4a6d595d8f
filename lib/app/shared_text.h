#pragma once
// Text in shared memory: bytes packed into 64-bit atomic words plus a length. A reader racing
// the writer reads torn words, never undefined behaviour; the caller's sequence number (or its
// tolerance for a mixed snapshot) decides what to do with them. Pointer-free, so it works in a
// MAP_SHARED region mapped at different addresses.

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace forklock {

template <std::size_t Words>
void store_text(std::array<std::atomic<std::uint64_t>, Words>& words,
                std::atomic<std::uint32_t>& length, std::string_view text) noexcept
{
    const std::size_t n = std::min(text.size(), Words * 8);
    for (std::size_t w = 0; w < (n + 7) / 8; ++w) {
        std::uint64_t word = 0;
        for (std::size_t b = 0; b < 8 && w * 8 + b < n; ++b)
            word |= std::uint64_t{static_cast<unsigned char>(text[w * 8 + b])} << (8 * b);
        words[w].store(word, std::memory_order_relaxed);
    }
    length.store(static_cast<std::uint32_t>(n), std::memory_order_relaxed);
}

template <std::size_t Words>
std::string load_text(const std::array<std::atomic<std::uint64_t>, Words>& words,
                      const std::atomic<std::uint32_t>& length)
{
    const std::size_t n = std::min<std::size_t>(length.load(std::memory_order_relaxed), Words * 8);
    std::string text(n, '\0');
    for (std::size_t b = 0; b < n; ++b)
        text[b] = static_cast<char>(words[b / 8].load(std::memory_order_relaxed) >> (8 * (b % 8)));
    return text;
}

} // namespace forklock
