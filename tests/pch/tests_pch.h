// The headers most test files include, parsed once per suite executable instead of once per file
// (meson's cpp_pch: every test file is compiled as if it began with this include). No include
// guard: a precompiled header is its own main file.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
