#pragma once
// The cells every act's table shares (report.cpp, seed_report.cpp): colours, the theory column,
// and the detail line under a row.

#include <string>
#include <string_view>

#include "table.h"
#include "theory.h"

namespace forklock::demo {

inline constexpr const char* kRed = "31";
inline constexpr const char* kGreen = "32";
inline constexpr const char* kYellow = "33";

// "matches" (green), "DIFFERS" (red), "unclear" (yellow).
Cell theory_cell(RowStatus status);
// `why`, then the note's first line in parentheses when there is a note.
std::string detail(std::string_view why, const std::string& note);

} // namespace forklock::demo
