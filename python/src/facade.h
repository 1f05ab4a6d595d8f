#pragma once
// The one place the Python module includes the lock library: its public facade only, never
// primitives/, table/ or modes/. When the headers move (include/forklock/), this file changes.

#include "locks/lock_errors.h"
#include "locks/lock_mode.h"
#include "locks/lock_stats.h"
#include "locks/lock_table.h"
