#pragma once
// The restart seed of fencing tokens (lock_table.h, KeyGuard::token()): a table made in shared
// memory starts its tokens at LockTable::raise_token_floor()'s floor, and a new server (or a table
// after a reload) must start above every token the last one issued, which it cannot know. So
// each table the master makes takes the next epoch of its data directory, kept in
// DATA_DIR/.fence-epoch (a name no counter key can have: keys never start with '.'), and starts
// at epoch * kTokensPerEpoch: a run would have to grant 2^40 times before it reached the next
// run's floor. flock and postgres modes keep their tokens in the lock files and the database,
// so for them the floor only lifts the numbers.
//
// Shared across processes: the file is read and rewritten under flock(2), so two servers
// starting on one data directory get different epochs. Power loss: the file is fsync()ed before
// the epoch is used.

#include <cstdint>
#include <filesystem>

namespace forklock {

inline constexpr std::uint64_t kTokensPerEpoch = std::uint64_t{1} << 40;

// advance_token_epoch: the next epoch's token floor (epoch * kTokensPerEpoch), the epoch written
// back first. Throws std::system_error when the file cannot be read, written or synced.
std::uint64_t advance_token_epoch(const std::filesystem::path& data_dir);

} // namespace forklock
