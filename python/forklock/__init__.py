"""forklock: per-key locks shared by forked processes (gunicorn workers), woken at once, and
freed when their holder dies. The same C++ lock table as the forklock server (lib/locks/).

    locks = forklock.LockDict(mode="mutex")       # before fork: --preload or on_starting
    with locks.lock("user:42", timeout=2) as guard:   # TimeoutError after 2 s
        ...                                      # guard.waited, guard.recovered_from

Modes (lock_table.h has the full contract): "mutex" (= "process", the default: robust
process-shared mutexes, a dead holder's key is recovered by the next locker), "semaphore" (an
owner word and a POSIX semaphore per key; a dead holder's key waits for a supervisor:
forklock.gunicorn.child_exit), "flock" (lock_dir/KEY.lock, shared with or without preload),
"postgres" (advisory locks, url=...: shared across machines), "thread" (one process only),
"none" (excludes nobody: for demonstrations). semaphore and mutex tables are shared by the
processes that inherit them (made before fork) or that open them by one name (name=..., share=True).

Keys are str (UTF-8) or bytes, 1..MAX_KEY_LENGTH bytes. Errors: ValueError (bad option or key),
TypeError (a key that is neither), TimeoutError (lock(timeout=...) ran out), TableFullError,
LockNameError, LockServerError / LockLostError (postgres), OSError (the OS refused).
See docs/python.md for the fork rules and the gunicorn recipe.
"""

import os
import weakref

from . import _forklock
from ._fork_checks import PrivateTableWarning, warn_if_private
from ._forklock import (MAX_KEY_LENGTH, Guard, LockError, LockLostError, LockNameError,
                        LockServerError, TableFullError, explain)

__all__ = [
    "LockTable", "LockDict", "Guard", "LockError", "TableFullError", "LockNameError",
    "LockServerError", "LockLostError", "PrivateTableWarning", "MAX_KEY_LENGTH", "explain",
    "tables_made_here",
]
__version__ = "0.1.0"

_tables = weakref.WeakSet()  # every open table this interpreter made (children inherit it)


class LockTable(_forklock.LockTable):
    """A table of per-key locks, made on first use of a key. Shared across processes and
    threads as its mode says (see the module's docstring).

    lock(key, timeout=None) -> Guard: `with` locks the key (TimeoutError after `timeout` s),
        waiting without the GIL; Ctrl-C interrupts the wait.
    try_lock(key) -> Guard holding the key, or None if someone else holds it.
    release_owned_by(pid) -> int: for a supervisor that reaped `pid`: frees the keys it held.
    owner(key), stats(), key_stats(limit=0): snapshots. close(): frees the table now (a
    named table's last user removes its names from /dev/shm); also `with LockTable(...)`.
    """

    def __init__(self, mode="process", name=None, share=False, capacity=1024, lock_dir=None,
                 url=None, recover_dead_owners=True):
        super().__init__()
        self._open(mode=mode, name=name, share=share, capacity=capacity, lock_dir=lock_dir,
                   url=url, recover_dead_owners=recover_dead_owners)
        _tables.add(self)
        warn_if_private(self, stacklevel=3)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        if self.closed:
            return f"<forklock.{type(self).__name__} closed>"
        named = f" name={self.name!r}" if self.name else ""
        return (f"<forklock.{type(self).__name__} mode={self.mode}{named} "
                f"capacity={self.capacity} made by pid {self.maker_pid}>")


class LockDict(LockTable):
    """The seed's LockDict (a dict of threading.Locks, one per key) shared across processes:
    `with locks.lock(key):` as before; only the constructor line changes. Same options and
    contract as LockTable."""


def tables_made_here():
    """The open tables this process made itself (not inherited from a parent)."""
    pid = os.getpid()
    return [t for t in list(_tables) if not t.closed and t.maker_pid == pid]
