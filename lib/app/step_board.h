#pragma once
// StepBoard: the gates of step mode, where the class is the scheduler. An increment of a key in
// step mode parks its worker thread at each named point of its critical section and waits until
// somebody steps it one point further (POST /control/step). docs/stepping.md is the lesson.
//
// Shared across processes and threads: the board lives in the scoreboard's MAP_SHARED region,
// mapped by the master before fork; it is standard-layout, pointer-free, all lock-free atomics.
// A parked thread sleeps on a futex (FUTEX_WAIT on its slot's phase word, not the private
// variant: the waker is another process). A futex rather than a sleep loop: a step wakes the
// request within microseconds, so a replayed schedule runs in milliseconds and the next GET
// /step already sees where it stopped; the wait is still sliced (200 ms) to keep the worker's
// heartbeat and check the deadline.
//
// If the owner dies: a worker killed while parked leaves its slots claimed; the master frees them
// when it reaps the pid (release_pid), as it frees the locks of any dead holder. A parked request
// never waits longer than its deadline: then it gives up (StepGaveUp, a 503) and passes no
// further gate. Turning a key's step mode off releases every gate of that key.
//
// The hot path: with no key in step mode, StepTicket's constructor is one relaxed load.

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace forklock {

// The named points of an increment, in order; a step moves a request past one of them.
enum class StepPoint : std::uint32_t { asked, holds, read, wrote, unlocked };
inline constexpr std::size_t kStepPoints = 5;
const char* to_string(StepPoint point) noexcept; // "asked for the lock", ...
const char* step_verb(StepPoint point) noexcept; // the step past it: "lock", "read", ...
std::optional<StepPoint> point_of_verb(std::string_view verb) noexcept;

inline constexpr std::size_t kStepKeys = 8;   // keys in step mode at once
inline constexpr std::size_t kStepSlots = 32; // requests inside step mode at once
inline constexpr std::size_t kStepScheduleBytes = 1024;
inline constexpr std::chrono::milliseconds kDefaultStepTimeout{30'000};

enum class StepPhase : std::uint32_t { free, running, parked, in_lock };

struct StepKeySlot {
    std::atomic<std::uint32_t> state;    // 0 free, 1 being written, 2 on
    std::atomic<std::uint32_t> epoch;    // changes when the key is turned on or off
    std::atomic<std::uint32_t> arrivals; // requests seen: A, B, ...
    std::atomic<std::uint32_t> key_length;
    std::array<std::atomic<std::uint64_t>, 16> key;
    std::atomic<std::uint32_t> schedule_length;
    std::array<std::atomic<std::uint64_t>, kStepScheduleBytes / 8> schedule;
};

struct StepSlot {
    std::atomic<std::uint32_t> phase; // StepPhase; the futex word
    std::atomic<std::uint32_t> point; // the StepPoint it is at (parked) or passed last
    std::atomic<std::uint32_t> key_index;
    std::atomic<std::uint32_t> key_epoch;
    std::atomic<std::uint32_t> letter; // 'A' + arrival order in its key
    std::atomic<pid_t> pid;
    std::atomic<pid_t> tid;
    std::atomic<std::uint64_t> id;
    std::atomic<std::uint64_t> read_value; // valid once point >= read
    std::atomic<std::uint32_t> has_read;
};

struct StepBoardState {
    std::atomic<std::uint32_t> keys_on; // the hot path's one load
    std::atomic<std::uint64_t> next_id;
    std::array<StepKeySlot, kStepKeys> keys;
    std::array<StepSlot, kStepSlots> slots;
};
static_assert(std::is_standard_layout_v<StepBoardState>);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// A parked request's view, for GET /step.
struct ParkedRequest {
    std::uint64_t id = 0;
    char letter = 'A';
    pid_t pid = 0;
    pid_t tid = 0;
    std::string key;
    StepPhase phase = StepPhase::running;
    StepPoint point = StepPoint::asked;
    std::optional<std::uint64_t> read;
};

class StepGaveUp : public std::runtime_error {
public:
    StepGaveUp(const std::string& message, bool written)
        : std::runtime_error(message), written_(written)
    {
    }
    bool written() const noexcept { return written_; }

private:
    bool written_;
};

// What a step did: the request after it (nullopt: it finished), or why none happened.
struct StepResult {
    enum class Status { stepped, not_parked, in_lock, no_such_request, elsewhere };
    Status status = Status::stepped;
    std::optional<ParkedRequest> after;
};

// The operations on a board; cheap to construct, refers to memory the caller owns.
class StepBoard final {
public:
    explicit StepBoard(StepBoardState& state) noexcept : s_(state) {}

    bool any_on() const noexcept { return s_.keys_on.load(std::memory_order_relaxed) != 0; }
    bool is_on(std::string_view key) const;
    // turn_on: false if kStepKeys keys are already on. Starts a new schedule for the key.
    bool turn_on(std::string_view key);
    // turn_off: releases every gate of `key`; false if it was not on.
    bool turn_off(std::string_view key);
    std::vector<std::string> keys() const;
    std::string schedule(std::string_view key) const;

    std::vector<ParkedRequest> requests() const;
    // step: moves the request with `id` past its point, then waits (at most `settle`) until it
    // parks again, blocks in lock() or finishes. With `at`, only if it is parked at that point
    // (else `elsewhere`): a step sent twice (a client that retried) moves it once.
    StepResult step(std::uint64_t id, std::chrono::milliseconds settle,
                    std::optional<StepPoint> at = std::nullopt);
    std::optional<ParkedRequest> find(std::uint64_t id) const;
    // yields_accept: whether a loop of worker `self` should leave new connections to the other
    // workers: `self` has a request inside step mode and fewer than `workers` workers have one.
    // So the second increment of an exercise lands on another worker (a std::mutex per worker
    // then does not exclude it), also with -w 2 -t 2. Call it only when any_on().
    bool yields_accept(pid_t self, std::size_t workers) const noexcept;
    // release_pid: the master, on reaping `pid`: frees its slots. Returns how many.
    std::size_t release_pid(pid_t pid) noexcept;

private:
    friend class StepTicket;
    std::optional<std::size_t> key_index(std::string_view key) const;
    void append_schedule(std::size_t key, char letter, StepPoint passed) noexcept;
    std::optional<ParkedRequest> view(std::size_t slot) const;
    StepBoardState& s_;
};

// set_step_claim_hook: `hook` runs on the thread of every increment of this process that enters
// step mode, once its slot names its pid (before its first gate). The worker wakes its other
// loops with it, to stop accepting (server/http_adapter.h). Process-wide; set it before any
// request is served, not while tickets are made.
void set_step_claim_hook(std::function<void()> hook);

// StepTicket: one increment's passage through the gates, on one thread. Without a board, or
// with its key not in step mode, every call returns at once. gate() parks until a step, the key
// is turned off, or the deadline (then it throws StepGaveUp, and every later gate is open).
// `beat` is called in every wait slice (the worker thread's heartbeat).
class StepTicket final {
public:
    StepTicket() = default;
    StepTicket(StepBoard* board, std::string_view key, std::chrono::milliseconds timeout,
               std::function<void()> beat);
    ~StepTicket();
    StepTicket(const StepTicket&) = delete;
    StepTicket& operator=(const StepTicket&) = delete;

    bool active() const noexcept { return slot_.has_value(); }
    void gate(StepPoint point, std::optional<std::uint64_t> read = std::nullopt);
    void entering_lock() noexcept; // shows "waiting for the lock" until the next gate
    std::uint64_t id() const noexcept;

private:
    bool key_still_on() const noexcept;
    StepBoard* board_ = nullptr;
    std::optional<std::size_t> slot_;
    std::chrono::steady_clock::time_point deadline_{};
    std::function<void()> beat_;
    bool gave_up_ = false;
};

} // namespace forklock
