// A full disk on the real server: the data directory on a small tmpfs (harness/tmpfs_mount.h,
// root only: the test skips, saying why, without it) filled to the last page. A key's first
// write needs a page and is refused with 507; keys that exist are written in place and go on;
// nothing acknowledged is lost and no file is left half made; once space is freed the server
// serves again. The answers name no directory of the server; its log does.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "app/counter_file.h"
#include "harness/http_client.h"
#include "harness/raw_exchange.h"
#include "harness/server_process.h"
#include "harness/tmpfs_mount.h"

using namespace forklock::harness;
using namespace std::chrono_literals;
namespace counter_file = forklock::counter_file;

namespace {

HttpResponse increment(const ServerProcess& server, const std::string& key)
{
    return http_request(server.endpoint(), "POST", "/counter/" + key + "/increment", 10s);
}

// The value in the key's file, read from the disk, not through the server.
std::optional<std::uint64_t> value_on_disk(const std::filesystem::path& dir, const std::string& key)
{
    std::ifstream in(dir / key, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), {}};
    auto state = counter_file::decode_file(bytes);
    if (!state) return std::nullopt;
    return state->value;
}

// Files in `dir` other than counters: temporary files a refused first write could leave.
std::vector<std::string> strays(const std::filesystem::path& dir)
{
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const auto name = e.path().filename().string();
        if (name.starts_with('.') && name != ".locks" && name != ".fence-epoch") out.push_back(name);
    }
    return out;
}

} // namespace

TEST_CASE("Server: a full disk answers 507, keeps every acknowledged increment, and serves again "
          "once space is freed",
          "[server][disk_full]")
{
    const TmpfsMount disk(1 << 20);
    if (!disk.mounted()) {
        WARN("skipped: " << disk.why_not());
        return;
    }
    const auto data = disk.path() / "data";
    ServerSpec spec;
    spec.args = {"-w", "2", "--lock-mode", "mutex", "--preload"};
    spec.data_dir = data;
    spec.workers = 2;
    ServerProcess server(spec);
    std::map<std::string, std::uint64_t> acknowledged;
    auto count = [&](const HttpResponse& r, const std::string& key) {
        if (r.status == 200) acknowledged[key] = r.json()["value"].get<std::uint64_t>();
    };
    for (const std::string key : {"a", "b"}) count(increment(server, key), key);
    REQUIRE(acknowledged.size() == 2);
    REQUIRE(disk.fill("filler") > 0);

    const auto full = increment(server, "fresh");
    INFO(full.body);
    CHECK(full.status == 507);
    const std::string error = full.json().value("error", "");
    CHECK(error.find("'fresh'") != std::string::npos);
    CHECK(error.find("no space left") != std::string::npos);
    CHECK(full.body.find(disk.path().string()) == std::string::npos);
    CHECK(full.body.find('/') == std::string::npos);
    CHECK(server.count_in_log(data.string() + "/.fresh.") >= 1); // the log has the call's path
    CHECK(server.count_in_log("No space left on device") >= 1);
    const auto raw =
        raw_exchange(server.endpoint(), "POST /counter/fresh/increment HTTP/1.1\r\nHost: "
                                        "localhost\r\nConnection: close\r\n\r\n");
    CHECK(raw.rfind("HTTP/1.1 507 Insufficient Storage\r\n", 0) == 0);

    for (int round = 0; round < 10; ++round) // in place: the first write took the page
        for (const std::string key : {"a", "b"}) {
            const auto r = increment(server, key);
            CHECK(r.status == 200);
            count(r, key);
        }
    CHECK(acknowledged == std::map<std::string, std::uint64_t>{{"a", 11}, {"b", 11}});
    for (const auto& [key, value] : acknowledged) {
        INFO(key);
        CHECK(value_on_disk(data, key) == value);
    }
    CHECK(!std::filesystem::exists(data / "fresh"));
    CHECK(strays(data).empty());
    CHECK(http_request(server.endpoint(), "GET", "/counter/fresh").json()["value"] == 0);

    std::filesystem::remove(disk.path() / "filler");
    const auto again = increment(server, "fresh");
    CHECK(again.status == 200);
    CHECK(again.json()["value"] == 1);
    CHECK(value_on_disk(data, "fresh") == 1);
}
