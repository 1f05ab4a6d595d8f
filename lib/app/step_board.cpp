#include "app/step_board.h"

#include <algorithm>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <thread>

#include <fmt/format.h>

#include "app/shared_text.h"
#include "os/current_pid.h"

namespace forklock {
namespace {

constexpr std::uint32_t kKeyFree = 0, kKeyWriting = 1, kKeyOn = 2;
constexpr std::chrono::milliseconds kWaitSlice{200};

std::uint32_t as_word(StepPhase p) noexcept { return static_cast<std::uint32_t>(p); }

// Shared (not FUTEX_PRIVATE): the parker and the stepper are different processes.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::chrono::milliseconds limit) noexcept
{
    timespec ts{static_cast<time_t>(limit.count() / 1000),
                static_cast<long>(limit.count() % 1000) * 1'000'000};
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, expected, &ts,
              nullptr, 0);
}

void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept
{
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT32_MAX, nullptr,
              nullptr, 0);
}

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

pid_t thread_id() noexcept { return static_cast<pid_t>(::gettid()); }

} // namespace

const char* to_string(StepPoint point) noexcept
{
    static constexpr const char* kNames[] = {"asked for the lock", "holds the lock", "read V",
                                             "wrote V+1", "unlocked"};
    return kNames[static_cast<std::size_t>(point) % kStepPoints];
}

const char* step_verb(StepPoint point) noexcept
{
    static constexpr const char* kVerbs[] = {"lock", "read", "write", "unlock", "done"};
    return kVerbs[static_cast<std::size_t>(point) % kStepPoints];
}

std::optional<StepPoint> point_of_verb(std::string_view verb) noexcept
{
    for (std::uint32_t p = 0; p < kStepPoints; ++p)
        if (verb == step_verb(static_cast<StepPoint>(p))) return static_cast<StepPoint>(p);
    return std::nullopt;
}

std::optional<std::size_t> StepBoard::key_index(std::string_view key) const
{
    for (std::size_t i = 0; i < kStepKeys; ++i) {
        const StepKeySlot& k = s_.keys[i];
        if (k.state.load(std::memory_order_acquire) == kKeyOn &&
            load_text(k.key, k.key_length) == key)
            return i;
    }
    return std::nullopt;
}

bool StepBoard::is_on(std::string_view key) const { return key_index(key).has_value(); }

bool StepBoard::turn_on(std::string_view key)
{
    if (auto i = key_index(key)) { // again: a new schedule, the same gates
        s_.keys[*i].schedule_length.store(0);
        return true;
    }
    for (auto& k : s_.keys) {
        std::uint32_t expected = kKeyFree;
        if (!k.state.compare_exchange_strong(expected, kKeyWriting)) continue;
        store_text(k.key, k.key_length, key);
        k.arrivals.store(0);
        k.schedule_length.store(0);
        k.epoch.fetch_add(1);
        k.state.store(kKeyOn, std::memory_order_release);
        s_.keys_on.fetch_add(1);
        return true;
    }
    return false;
}

bool StepBoard::turn_off(std::string_view key)
{
    const auto i = key_index(key);
    if (!i) return false;
    StepKeySlot& k = s_.keys[*i];
    std::uint32_t expected = kKeyOn;
    if (!k.state.compare_exchange_strong(expected, kKeyWriting)) return false;
    k.epoch.fetch_add(1); // every ticket of the old epoch now passes its gates
    for (auto& slot : s_.slots) {
        if (slot.key_index.load() != *i) continue;
        std::uint32_t parked = as_word(StepPhase::parked);
        if (slot.phase.compare_exchange_strong(parked, as_word(StepPhase::running)))
            futex_wake_all(slot.phase);
    }
    s_.keys_on.fetch_sub(1);
    k.state.store(kKeyFree, std::memory_order_release);
    return true;
}

std::vector<std::string> StepBoard::keys() const
{
    std::vector<std::string> out;
    for (const auto& k : s_.keys)
        if (k.state.load(std::memory_order_acquire) == kKeyOn)
            out.push_back(load_text(k.key, k.key_length));
    return out;
}

std::string StepBoard::schedule(std::string_view key) const
{
    const auto i = key_index(key);
    return i ? load_text(s_.keys[*i].schedule, s_.keys[*i].schedule_length) : std::string();
}

// Appends " X:verb" with one fetch_add reserving the bytes, so two steppers never overlap; a
// schedule longer than kStepScheduleBytes keeps its beginning.
void StepBoard::append_schedule(std::size_t key, char letter, StepPoint passed) noexcept
{
    StepKeySlot& k = s_.keys[key];
    char text[16];
    const auto end =
        fmt::format_to_n(text, sizeof text, "{}{}:{}", k.schedule_length.load() == 0 ? "" : " ",
                         letter, step_verb(passed));
    const auto n = static_cast<std::uint32_t>(end.size);
    const std::uint32_t at = k.schedule_length.fetch_add(n);
    if (at + n > kStepScheduleBytes) {
        k.schedule_length.fetch_sub(n);
        return;
    }
    for (std::uint32_t b = 0; b < n; ++b) {
        auto& word = k.schedule[(at + b) / 8];
        const unsigned shift = 8 * ((at + b) % 8);
        word.fetch_and(~(std::uint64_t{0xff} << shift));
        word.fetch_or(std::uint64_t{static_cast<unsigned char>(text[b])} << shift);
    }
}

std::optional<ParkedRequest> StepBoard::view(std::size_t i) const
{
    const StepSlot& s = s_.slots[i];
    const auto phase = static_cast<StepPhase>(s.phase.load(std::memory_order_acquire));
    if (phase == StepPhase::free) return std::nullopt;
    const auto key = s.key_index.load();
    if (key >= kStepKeys) return std::nullopt;
    ParkedRequest r;
    r.id = s.id.load();
    r.letter = static_cast<char>(s.letter.load());
    r.pid = s.pid.load();
    r.tid = s.tid.load();
    r.key = load_text(s_.keys[key].key, s_.keys[key].key_length);
    r.phase = phase;
    r.point = static_cast<StepPoint>(s.point.load());
    if (s.has_read.load()) r.read = s.read_value.load();
    return r;
}

std::vector<ParkedRequest> StepBoard::requests() const
{
    std::vector<ParkedRequest> out;
    for (std::size_t i = 0; i < kStepSlots; ++i)
        if (auto r = view(i)) out.push_back(std::move(*r));
    return out;
}

std::optional<ParkedRequest> StepBoard::find(std::uint64_t id) const
{
    for (std::size_t i = 0; i < kStepSlots; ++i)
        if (s_.slots[i].id.load() == id)
            if (auto r = view(i)) return r;
    return std::nullopt;
}

StepResult StepBoard::step(std::uint64_t id, std::chrono::milliseconds settle,
                           std::optional<StepPoint> at)
{
    const auto found = find(id);
    if (!found) return {StepResult::Status::no_such_request, std::nullopt};
    if (found->phase == StepPhase::in_lock) return {StepResult::Status::in_lock, found};
    // A parked request's point changes only once it is stepped: checked before the exchange, a
    // concurrent step of the same request could slip in between, which `at` is not meant to
    // stop (it stops a retried step arriving after its first copy moved the request).
    if (at && found->phase == StepPhase::parked && found->point != *at)
        return {StepResult::Status::elsewhere, found};
    for (std::size_t i = 0; i < kStepSlots; ++i) {
        StepSlot& s = s_.slots[i];
        if (s.id.load() != id) continue;
        std::uint32_t parked = as_word(StepPhase::parked);
        if (!s.phase.compare_exchange_strong(parked, as_word(StepPhase::running)))
            return {StepResult::Status::not_parked, view(i)};
        append_schedule(s.key_index.load(), static_cast<char>(s.letter.load()),
                        static_cast<StepPoint>(s.point.load()));
        futex_wake_all(s.phase);
        const auto deadline = std::chrono::steady_clock::now() + settle;
        while (std::chrono::steady_clock::now() < deadline) {
            const auto phase = static_cast<StepPhase>(s.phase.load());
            if (phase != StepPhase::running || s.id.load() != id) break;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        if (s.id.load() != id) return {StepResult::Status::stepped, std::nullopt};
        return {StepResult::Status::stepped, view(i)};
    }
    return {StepResult::Status::no_such_request, std::nullopt};
}

bool StepBoard::yields_accept(pid_t self, std::size_t workers) const noexcept
{
    std::array<pid_t, kStepSlots> pids{};
    std::size_t distinct = 0;
    bool mine = false;
    for (const auto& s : s_.slots) {
        if (s.phase.load(std::memory_order_relaxed) == as_word(StepPhase::free)) continue;
        const pid_t pid = s.pid.load(std::memory_order_relaxed);
        mine = mine || pid == self;
        if (std::find(pids.begin(), pids.begin() + distinct, pid) == pids.begin() + distinct)
            pids[distinct++] = pid;
    }
    return mine && distinct < workers;
}

std::size_t StepBoard::release_pid(pid_t pid) noexcept
{
    std::size_t freed = 0;
    for (auto& s : s_.slots) {
        if (s.phase.load() == as_word(StepPhase::free) || s.pid.load() != pid) continue;
        s.id.store(0);
        s.phase.store(as_word(StepPhase::free));
        ++freed;
    }
    return freed;
}

namespace {
std::function<void()>& claim_hook()
{
    static std::function<void()> hook;
    return hook;
}
} // namespace

void set_step_claim_hook(std::function<void()> hook) { claim_hook() = std::move(hook); }

StepTicket::StepTicket(StepBoard* board, std::string_view key, std::chrono::milliseconds timeout,
                       std::function<void()> beat)
{
    if (board == nullptr || !board->any_on()) return;
    const auto key_slot = board->key_index(key);
    if (!key_slot) return;
    StepKeySlot& k = board->s_.keys[*key_slot];
    for (std::size_t i = 0; i < kStepSlots; ++i) {
        StepSlot& s = board->s_.slots[i];
        std::uint32_t free = as_word(StepPhase::free);
        if (!s.phase.compare_exchange_strong(free, as_word(StepPhase::running))) continue;
        s.point.store(0);
        s.key_index.store(static_cast<std::uint32_t>(*key_slot));
        s.key_epoch.store(k.epoch.load());
        s.letter.store('A' + k.arrivals.fetch_add(1) % 26);
        s.pid.store(current_pid());
        s.tid.store(thread_id());
        s.has_read.store(0);
        s.id.store(board->s_.next_id.fetch_add(1) + 1);
        board_ = board;
        slot_ = i;
        deadline_ = std::chrono::steady_clock::now() + timeout;
        beat_ = std::move(beat);
        if (claim_hook()) claim_hook()();
        return;
    }
}

StepTicket::~StepTicket()
{
    if (!slot_) return;
    StepSlot& s = board_->s_.slots[*slot_];
    s.id.store(0);
    s.phase.store(as_word(StepPhase::free), std::memory_order_release);
}

std::uint64_t StepTicket::id() const noexcept
{
    return slot_ ? board_->s_.slots[*slot_].id.load() : 0;
}

bool StepTicket::key_still_on() const noexcept
{
    const StepSlot& s = board_->s_.slots[*slot_];
    const StepKeySlot& k = board_->s_.keys[s.key_index.load()];
    return k.state.load() == kKeyOn && k.epoch.load() == s.key_epoch.load();
}

void StepTicket::entering_lock() noexcept
{
    if (slot_ && !gave_up_ && key_still_on())
        board_->s_.slots[*slot_].phase.store(as_word(StepPhase::in_lock));
}

void StepTicket::gate(StepPoint point, std::optional<std::uint64_t> read)
{
    if (!slot_ || gave_up_) return;
    StepSlot& s = board_->s_.slots[*slot_];
    s.point.store(static_cast<std::uint32_t>(point));
    if (read) {
        s.read_value.store(*read);
        s.has_read.store(1);
    }
    if (!key_still_on()) return s.phase.store(as_word(StepPhase::running));
    s.phase.store(as_word(StepPhase::parked), std::memory_order_release);
    while (s.phase.load(std::memory_order_acquire) == as_word(StepPhase::parked)) {
        if (beat_) beat_();
        const auto now = std::chrono::steady_clock::now();
        std::uint32_t parked = as_word(StepPhase::parked);
        if (now >= deadline_ &&
            s.phase.compare_exchange_strong(parked, as_word(StepPhase::running))) {
            gave_up_ = true;
            throw StepGaveUp(fmt::format("step mode: nobody stepped this increment within its "
                                         "timeout; it gave up at '{}' and passed no further gate",
                                         to_string(point)),
                             point >= StepPoint::wrote);
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now);
        futex_wait(s.phase, as_word(StepPhase::parked),
                   std::max(std::chrono::milliseconds(1), std::min(left, kWaitSlice)));
    }
}

} // namespace forklock
