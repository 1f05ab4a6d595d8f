#pragma once
// flock: flock(2) on lock_dir/KEY.lock, opened anew by every acquisition (key_file_lock.h), so no
// fd inherited from a master can carry or leak a lock: shared across processes and threads with
// or without preload. Holder death: the kernel drops the lock when the dead process's files close;
// the next holder (or a supervisor's release_owned_by) counts the recovery. Slots, and with them
// statistics, are shared only if the table was made before fork.
//
// Why the file is locked before the slot is pinned: a process killed while it pins a slot and
// holds no lock leaves a reference nobody can return (slot_table.h), and the file syscalls are
// where a worker spends its time. So a free file lock is taken *before* the pin (before_pin, then
// own_file: nothing slow between pin and owner), a wait is recorded as one (the WaitRegistry
// returns a dead waiter's reference) from just after the pin until just before the owner is
// written, and release() unpins before it closes the file.

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "locks/modes/mode.h"
#include "locks/primitives/key_file_lock.h"

namespace forklock {

class FlockMode final : public ModeBase {
public:
    using Handle = UniqueFd;
    using Early = KeyFile; // the key's lock file, tried once: locked, or open to wait on

    using ModeBase::ModeBase;

    static void validate(const LockTableOptions& o)
    {
        if (!std::filesystem::is_directory(o.lock_dir))
            throw std::invalid_argument(fmt::format(
                "flock mode needs an existing lock_dir, not '{}'", o.lock_dir.string()));
    }

    // claim: asked with the generation odd. The key leaves the table: its lock file goes too (if
    // nobody holds it, here or in a process with its own table), so files stay bounded by capacity.
    bool claim(Slot& s) override
    {
        if (s.refs.load(std::memory_order_seq_cst) != 0) return false;
        remove_lock_file_if_free(file_of(s.key_view()));
        return true;
    }

    Early before_pin(std::string_view key) { return lock_key_file(file_of(key), std::int64_t{0}); }
    Taken<Handle> take(Slot& s, std::uint32_t, Deadline deadline, Early&& early)
    {
        Taken<Handle> t;
        if (!early.locked)
            early = blocking(s, t, [&] {
                return lock_key_file(file_of(s.key_view()), deadline, std::move(early.fd));
            });
        if (early.locked) own_file(s, std::move(early.fd), t);
        return t; // not locked: early's fd closes here
    }
    void unlock(Slot& s, Handle&& fd) noexcept
    {
        s.owner_pid.store(0, std::memory_order_release);
        unlock_and_close(std::move(fd));
    }
    // release: unpinned while the file is still locked, so no slow step lies between the two. If
    // the slot is evicted meanwhile, its lock file stays: it is locked.
    void release(Slot& s, Handle&& fd) noexcept
    {
        s.owner_pid.store(0, std::memory_order_release);
        unpin(s);
        unlock_and_close(std::move(fd));
    }
    // grant: the key's token lives in its lock file (key_file_lock.h), which this holder has
    // locked: the file's, or the slot's, or for a new file the directory's floor, plus one.
    std::uint64_t grant(Slot& s, Handle& fd) noexcept
    {
        std::uint64_t last = read_token(fd);
        if (last == 0) last = token_floor(parts_.options.lock_dir);
        const std::uint64_t token = std::max(last, s.fence.load(std::memory_order_relaxed)) + 1;
        (void)write_token(fd, token); // a failed write is logged; the slot still remembers it
        s.fence.store(token, std::memory_order_relaxed);
        return token;
    }

    // release_dead (the default): the kernel already dropped the file lock; this clears the
    // bookkeeping and returns the dead holder's reference.

private:
    std::filesystem::path file_of(std::string_view key) const
    {
        return parts_.options.lock_dir / lock_file_name(key);
    }
    // own_file: the file lock `fd` is ours; so is the key. owner_pid still set means its holder
    // died holding the file lock (the kernel released it) and no supervisor has cleaned up yet:
    // the recovery, and the dead holder's reference, are ours.
    void own_file(Slot& s, UniqueFd fd, Taken<Handle>& t) noexcept
    {
        t.ok = true;
        t.handle = std::move(fd);
        const pid_t previous = s.owner_pid.exchange(current_pid(), std::memory_order_acq_rel);
        if (previous != 0) {
            t.recovered_from = previous;
            count_recovery(s, previous);
            unpin(s);
        }
    }
};

} // namespace forklock
