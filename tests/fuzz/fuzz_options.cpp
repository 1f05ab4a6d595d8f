// Fuzz target: the command line. The fuzz bytes, split at NUL, are the arguments; parse_options()
// returns options (exit code 0, nothing on stderr) or an exit code and a text, and never throws
// (it is declared without noexcept, so an escaping exception is a crash here).

#include <cstdint>
#include <cstdlib>

#include "app/options.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto args = forklock::fuzz::split_fields(data, size);
    if (size == 0) args.clear();
    forklock::ParseResult r = forklock::parse_options(args);
    if (r.options) {
        if (r.exit_code != 0 || !r.err.empty()) std::abort();
        const forklock::Options& o = *r.options;
        if (o.workers < 1 || o.threads < 1 || o.lock_slots < 1 || o.trace_size < 1) std::abort();
        (void)forklock::lost_update_warnings(o);
        (void)forklock::bind_url(o.bind);
    } else {
        // --help and --version exit 0 with text on stdout; an error exits non-zero and says why.
        if (r.exit_code == 0 ? r.out.empty() : r.err.empty()) std::abort();
    }
    return 0;
}
