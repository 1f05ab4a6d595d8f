#pragma once
// The one place the Python module includes the lock library: its public headers only
// (include/forklock/), never primitives/, table/ or modes/.

#include <forklock/lock_errors.h>
#include <forklock/lock_mode.h>
#include <forklock/lock_stats.h>
#include <forklock/lock_table.h>
