"""The seed's silent bug, made loud where it can be seen: a table every worker was meant to
share, made by each gunicorn worker after fork, so each worker locks only its own copy.

Detected: an anonymous semaphore or mutex table made in a gunicorn worker (the calling stack
runs gunicorn's worker code, gunicorn/workers/, as it does while a worker imports the app
without --preload and while it serves; or forklock.gunicorn.post_fork marked this process),
and a thread table made anywhere under gunicorn. Not detected: other pre-fork servers (uWSGI,
multiprocessing pools, Celery), or a table made on a thread the app started itself; there the
rule in docs/python.md applies: make it before fork, or give it a name.
"""

import os
import sys
import warnings


class PrivateTableWarning(RuntimeWarning):
    """A lock table that other workers cannot see was made where sharing was meant.
    `warnings.simplefilter("error", forklock.PrivateTableWarning)` makes it an error."""


_marked_worker_pid = 0


def mark_worker():
    """Called in a gunicorn worker (forklock.gunicorn.post_fork): this process is a worker."""
    global _marked_worker_pid
    _marked_worker_pid = os.getpid()


def _gunicorn_frames():
    """Which gunicorn code the calling stack runs: {"worker", "master"} subsets."""
    seen = set()
    frame = sys._getframe(1)
    while frame is not None:
        path = frame.f_code.co_filename.replace(os.sep, "/")
        if "/gunicorn/workers/" in path:
            seen.add("worker")
        elif "/gunicorn/" in path:
            seen.add("master")
        frame = frame.f_back
    return seen


def in_gunicorn_worker():
    return _marked_worker_pid == os.getpid() or "worker" in _gunicorn_frames()


def warn_if_private(table, stacklevel):
    if "gunicorn" not in sys.modules:
        return
    if table.mode == "thread" and (_gunicorn_frames() or in_gunicorn_worker()):
        warnings.warn(
            "forklock: a thread-mode table excludes only the threads of one process: gunicorn's "
            "workers each lock their own copy and lose updates. Use mode='mutex' (made before "
            "fork: --preload or on_starting) or a named table (name=..., share=True).",
            PrivateTableWarning, stacklevel=stacklevel)
    elif table.mode in ("semaphore", "mutex") and not table.name and in_gunicorn_worker():
        warnings.warn(
            f"forklock: this anonymous {table.mode} table was made in gunicorn worker "
            f"{os.getpid()}, after fork: no other worker can see it, so it excludes nobody "
            "across workers. Make it in the master (gunicorn --preload, or import the module "
            "that makes it in on_starting), or give it a name (name=..., share=True) so every "
            "worker opens the same table.",
            PrivateTableWarning, stacklevel=stacklevel)
