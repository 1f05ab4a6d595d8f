#pragma once
// TableMemory: the memory one lock table lives in. Anonymous (today's tables: found only by
// inheritance across fork) or named: one shared memory object /dev/shm/forklock-NAME that any
// process can open, so tables made after fork still meet (lock_table.h states the contract).
//
// A named object: page 0 a NamedHeader, then the wait registry, then the slot table, each at a
// page boundary. Its semaphores (semaphore mode) are /dev/shm/sem.forklock-NAME.I.
//
// Lifetime, all decided by flock(2) on each opener's own fd of the object:
//  - every live user holds LOCK_SH for the table's life (a forked child that inherited the fd
//    shares its opener's lock, so it counts while it lives);
//  - the creator made the object with O_CREAT|O_EXCL and holds LOCK_EX while it lays the table
//    out and makes the semaphores; it writes the header's magic last, then goes down to LOCK_SH;
//  - an opener that gets LOCK_EX without waiting on an existing object has found one nobody uses
//    (its users were killed -9, or its creator died half way): stale, removed and made anew,
//    never read;
//  - a closing user that gets LOCK_EX without waiting is the last: it unlinks the semaphores and
//    then the object, while still holding LOCK_EX, so no new creator can meet the old names.
// Every holder of the lock checks afterwards that the name still leads to its object (an object
// unlinked under it makes it start again).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <forklock/lock_options.h>
#include "os/memory_region.h"

namespace forklock {

class TableName;

struct TableMemory {
    MemoryRegion slots;
    MemoryRegion waits;
    bool attach = false; // laid out by another process: map it, initialise nothing
    TableOrigin origin = TableOrigin::anonymous;
    std::unique_ptr<TableName> name; // a named table's hold on its name; null when anonymous
};

// The anonymous memory of an unnamed table.
TableMemory anonymous_table_memory(std::size_t slot_bytes, std::size_t wait_bytes,
                                   MemoryRegion::Sharing sharing);

// named_table_memory: opens options.name, creating or rebuilding it as above. Throws
// LockNameError for a live table that options may not join (share false, or a different layout,
// mode or capacity), std::system_error from the OS. The caller builds the table in the memory and
// then calls publish(memory): a fresh table is not visible to others before that.
TableMemory named_table_memory(const LockTableOptions& options, std::size_t slot_bytes,
                               std::size_t wait_bytes);
void publish(TableMemory& memory);

// The names behind a table name: the shared memory object and semaphore `index`.
std::string shm_name_of(const std::string& table_name);
std::string semaphore_name_of(const std::string& table_name, std::size_t index);

// TableName: a named table's hold on its name (its fd with the flock, and the header's mapping).
// The destructor unlinks the names if this was the last user; it does nothing in a process that
// did not open it (a forked child must not touch its parent's lock).
class TableName {
public:
    struct State;
    explicit TableName(std::unique_ptr<State> state);
    ~TableName();
    TableName(const TableName&) = delete;
    TableName& operator=(const TableName&) = delete;
    void publish();

private:
    std::unique_ptr<State> state_;
};

} // namespace forklock
