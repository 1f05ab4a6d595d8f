#include "app/config_file.h"

#include <algorithm>
#include <array>
#include <string_view>

#include <fmt/format.h>

namespace forklock {
namespace {

// How a HUP applies a key: copy its value into the running options; ask for it as a
// ConfigChange; or copy it and ask for a new table. Keys not listed need a restart.
enum class HupKind { copy, change, table };

struct HupRule {
    std::string_view key;
    HupKind kind;
    void (*apply)(Options& to, const Options& from, ConfigChange& change);
};

constexpr std::array kHupRules{
    HupRule{"workers", HupKind::change,
            [](Options&, const Options& f, ConfigChange& c) { c.workers = f.workers; }},
    HupRule{"threads", HupKind::change,
            [](Options&, const Options& f, ConfigChange& c) { c.threads = f.threads; }},
    HupRule{"lock-mode", HupKind::change,
            [](Options&, const Options& f, ConfigChange& c) { c.mode = f.lock_mode; }},
    HupRule{"preload", HupKind::change,
            [](Options&, const Options& f, ConfigChange& c) { c.preload = f.preload; }},
    HupRule{"lock-slots", HupKind::table,
            [](Options& t, const Options& f, ConfigChange&) { t.lock_slots = f.lock_slots; }},
    HupRule{"lock-url", HupKind::table,
            [](Options& t, const Options& f, ConfigChange&) { t.lock_url = f.lock_url; }},
    HupRule{"no-lock-recovery", HupKind::table,
            [](Options& t, const Options& f, ConfigChange&) { t.lock_recovery = f.lock_recovery; }},
    HupRule{"worker-connections", HupKind::copy,
            [](Options& t, const Options& f, ConfigChange&) {
                t.worker_connections = f.worker_connections;
            }},
    HupRule{"timeout", HupKind::copy,
            [](Options& t, const Options& f, ConfigChange&) { t.timeout_s = f.timeout_s; }},
    HupRule{"graceful-timeout", HupKind::copy,
            [](Options& t, const Options& f, ConfigChange&) {
                t.graceful_timeout_s = f.graceful_timeout_s;
            }},
    HupRule{"max-requests", HupKind::copy,
            [](Options& t, const Options& f, ConfigChange&) { t.max_requests = f.max_requests; }},
    HupRule{"max-requests-jitter", HupKind::copy,
            [](Options& t, const Options& f, ConfigChange&) {
                t.max_requests_jitter = f.max_requests_jitter;
            }},
    HupRule{"log-level", HupKind::copy,
            [](Options& t, const Options& f, ConfigChange&) { t.log_level = f.log_level; }},
    HupRule{"dashboard-controls", HupKind::copy,
            [](Options& t, const Options& f, ConfigChange&) {
                t.dashboard_controls = f.dashboard_controls;
            }},
    HupRule{"allowed-hosts", HupKind::copy,
            [](Options& t, const Options& f, ConfigChange&) { t.allowed_hosts = f.allowed_hosts; }},
    HupRule{"header-timeout", HupKind::copy,
            [](Options& t, const Options& f, ConfigChange&) {
                t.header_timeout_s = f.header_timeout_s;
            }},
    HupRule{
        "body-timeout", HupKind::copy,
        [](Options& t, const Options& f, ConfigChange&) { t.body_timeout_s = f.body_timeout_s; }},
    HupRule{"keepalive-timeout", HupKind::copy,
            [](Options& t, const Options& f, ConfigChange&) {
                t.keepalive_timeout_s = f.keepalive_timeout_s;
            }},
};

const HupRule* hup_rule(std::string_view key)
{
    auto it = std::find_if(kHupRules.begin(), kHupRules.end(),
                           [&](const HupRule& r) { return r.key == key; });
    return it == kHupRules.end() ? nullptr : &*it;
}

const Setting* find_setting(const std::vector<Setting>& settings, std::string_view key)
{
    auto it = std::find_if(settings.begin(), settings.end(),
                           [&](const Setting& s) { return s.key == key; });
    return it == settings.end() ? nullptr : &*it;
}

} // namespace

const char* to_string(SettingSource source) noexcept
{
    switch (source) {
    case SettingSource::flag: return "flag";
    case SettingSource::file: return "file";
    case SettingSource::default_value: return "default";
    }
    return "?";
}

std::string format_settings(const std::vector<Setting>& settings)
{
    std::string out = "# forklock's resolved settings (--print-config); read them back with -c "
                      "FILE.\n# After each: where it came from (flag, file or default).\n";
    for (const Setting& s : settings)
        out += fmt::format("{} = {}  # {}\n", s.key, s.value, to_string(s.source));
    return out;
}

ReloadPlan plan_reload(const Options& running, const std::vector<Setting>& loaded,
                       const ParseResult& fresh)
{
    ReloadPlan plan{running, std::nullopt, {}, {}, fresh.settings};
    ConfigChange change;
    bool new_table = false;
    for (const Setting& now : fresh.settings) {
        const Setting* before = find_setting(loaded, now.key);
        if (before != nullptr && before->value == now.value) continue;
        const std::string what =
            fmt::format("{}: {} -> {}", now.key, before ? before->value : "?", now.value);
        const HupRule* rule = hup_rule(now.key);
        if (rule == nullptr) {
            plan.need_restart.push_back(what);
            if (before != nullptr) plan.settings[&now - fresh.settings.data()] = *before;
            continue;
        }
        rule->apply(plan.next, *fresh.options, change);
        new_table = new_table || rule->kind != HupKind::copy;
        plan.applied.push_back(what);
    }
    if (new_table) plan.change = change;
    return plan;
}

} // namespace forklock
