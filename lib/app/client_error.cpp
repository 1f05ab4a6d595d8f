#include "app/client_error.h"

#include <cerrno>
#include <cstring>

namespace forklock {
namespace {

// A path starts after one of these (or at the start), and ends at the next of these or a space.
constexpr std::string_view kBefore = " \t\"'(=,[<"; // not ':': "http://h/x" stays
constexpr std::string_view kAfter = " \t\n\"'),:;]>";

bool starts_path(std::string_view text, std::size_t at)
{
    return text[at] == '/' && (at == 0 || kBefore.find(text[at - 1]) != std::string_view::npos);
}

} // namespace

bool is_disk_full(int err) noexcept { return err == ENOSPC || err == EDQUOT; }

std::string errno_reason(int err)
{
    if (err == ENOSPC)
        return "no space left on the data directory's file system; free space there and retry";
    if (err == EDQUOT)
        return "the disk quota of the data directory is used up; free space and retry";
    return std::strerror(err);
}

std::string strip_directories(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t at = 0; at < text.size();) {
        if (!starts_path(text, at)) {
            out.push_back(text[at++]);
            continue;
        }
        std::size_t end = text.find_first_of(kAfter, at);
        if (end == std::string_view::npos) end = text.size();
        const auto path = text.substr(at, end - at);
        const auto last = path.find_last_of('/', path.size() > 1 ? path.size() - 2 : 0);
        out.append(path.size() > 1 ? path.substr(last + 1) : path);
        at = end;
    }
    return out;
}

} // namespace forklock
