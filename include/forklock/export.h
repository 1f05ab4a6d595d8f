#pragma once
// FORKLOCK_API: what libforklock.so exports. The library is built with -fvisibility=hidden, so
// only the public API (these headers) is in its dynamic symbol table.

#define FORKLOCK_API [[gnu::visibility("default")]]
