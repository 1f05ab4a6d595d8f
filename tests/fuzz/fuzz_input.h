#pragma once
// Splitting a fuzz input into fields: the shared convention of the targets in tests/fuzz/, so a
// seed written by hand reads as its fields separated by NUL bytes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace forklock::fuzz {

// split_fields: `data` cut at every NUL byte; the last field runs to the end (may be empty).
inline std::vector<std::string> split_fields(const std::uint8_t* data, std::size_t size)
{
    std::vector<std::string> fields(1);
    for (std::size_t i = 0; i < size; ++i) {
        if (data[i] == 0)
            fields.emplace_back();
        else
            fields.back() += static_cast<char>(data[i]);
    }
    return fields;
}

// Field `i`, or "" past the end.
inline std::string field(const std::vector<std::string>& fields, std::size_t i)
{
    return i < fields.size() ? fields[i] : std::string();
}

} // namespace forklock::fuzz
