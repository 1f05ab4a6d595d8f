// Fuzz target: the HTTP handler, Api::handle, as the adapter calls it. The fuzz bytes, split at
// NUL, are the method, the path, the query, the X-Forklock-Token header and whether the peer is
// on loopback (a fifth field that is not empty: it is not). A thread-mode table, a CounterStore
// in a temporary directory, a scoreboard, metrics, a trace ring and options with a token, so
// every route has what it needs, the dashboard's controls included: the "master" the scoreboard
// names is this process, which ignores the SIGHUP a /control/config sends it, and a
// /control/kill can only name a worker, of which the scoreboard has none.
// Invariants: the status is in 100..599; a JSON body parses; no file appears anywhere but in the
// data directory, and there only a valid key's file.

#include <sys/types.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "app/api.h"
#include "app/options.h"
#include "fuzz_input.h"
#include "harness/temp_dir.h"

namespace {

namespace fs = std::filesystem;

struct World {
    forklock::harness::TempDir root{"forklock-fuzz-api"};
    fs::path data = make_data(root.path());
    forklock::LockTable table{{forklock::LockMode::thread, 64, true, {}, {}, false, {}}};
    forklock::CounterStore store{data};
    forklock::Scoreboard scoreboard{::getpid()};
    forklock::TraceRing trace{1024};
    forklock::LockMetrics metrics;
    forklock::Options options = make_options();
    forklock::Api api{{&table, &store, &scoreboard, ::getpid(), &trace, &metrics, &options}};

    static forklock::Options make_options()
    {
        std::signal(SIGHUP, SIG_IGN);
        forklock::Options o;
        o.dashboard_token = "fuzz-token";
        return o;
    }

    static fs::path make_data(const fs::path& root)
    {
        fs::create_directory(root / "data");
        return root / "data";
    }
};

[[noreturn]] void fail(const char* what, const forklock::Request& r, const std::string& detail)
{
    std::fprintf(stderr, "%s: method '%s' path '%s' query '%s': %s\n", what, r.method.c_str(),
                 r.path.c_str(), r.query.c_str(), detail.c_str());
    std::abort();
}

// Everything under the root is the data directory or a valid key's file in it; clears the data
// directory now and then so the listing stays short.
void check_files(World& w, const forklock::Request& r)
{
    std::size_t files = 0;
    for (const auto& e : fs::recursive_directory_iterator(w.root.path())) {
        if (e.path() == w.data) continue;
        if (e.path().parent_path() != w.data || !forklock::valid_key(e.path().filename().string()))
            fail("file outside the data directory's keys", r, e.path().string());
        ++files;
    }
    if (files > 256)
        for (const auto& e : fs::directory_iterator(w.data)) fs::remove(e.path());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static World world;
    auto fields = forklock::fuzz::split_fields(data, size);
    forklock::Request request{forklock::fuzz::field(fields, 0), forklock::fuzz::field(fields, 1),
                              forklock::fuzz::field(fields, 2)};
    request.token = forklock::fuzz::field(fields, 3);
    request.from_loopback = forklock::fuzz::field(fields, 4).empty();
    if (fields.size() > 5) request.host = forklock::fuzz::field(fields, 5);
    if (fields.size() > 6) request.origin = forklock::fuzz::field(fields, 6);
    request.fetch_site = forklock::fuzz::field(fields, 7);
    try { // a held section sleeps hold_ms: the fuzzer would spend its time asleep
        if (forklock::query_int(request.query, "hold_ms", 0, forklock::kMaxHoldMs).value_or(0) > 0)
            return 0;
    } catch (const forklock::BadRequest&) {
    }
    forklock::Response response = world.api.handle(request);
    if (response.status < 100 || response.status > 599)
        fail("status out of range", request, std::to_string(response.status));
    if (response.content_type == "application/json" &&
        nlohmann::json::parse(response.body, nullptr, false).is_discarded())
        fail("JSON body does not parse", request, response.body);
    check_files(world, request);
    return 0;
}
