"""forklock in a gunicorn config file (gunicorn.conf.py):

    from forklock.gunicorn import child_exit, post_fork   # the master frees a dead worker's keys

    def on_starting(server):     # without --preload: make the app's tables in the master
        import app               # app.py: locks = forklock.LockDict(mode="semaphore")

child_exit runs in the master after a worker exited and was reaped: it frees the keys that
worker held in every table the master made (semaphore mode needs this supervisor; mutex mode
recovers by itself, sooner with it). Tables the master did not make (a named table only the
workers open) are not seen: open it in the config file too, e.g.
`locks = forklock.LockTable(mode="semaphore", name="myapp", share=True)`, so the master is a
user of it. post_fork marks the process as a worker, for the private-table warning.
If the config defines its own hooks, call these from them.
"""

from . import tables_made_here
from ._fork_checks import mark_worker


def child_exit(server, worker):
    """gunicorn hook, in the master: free every key the dead `worker` held."""
    freed = 0
    for table in tables_made_here():
        try:
            freed += table.release_owned_by(worker.pid)
        except (ValueError, OSError, RuntimeError) as e:
            server.log.error("forklock: could not free the keys of worker %s in %r: %s",
                             worker.pid, table, e)
    if freed:
        server.log.warning("forklock: freed %d key(s) held by worker %s, which died holding "
                           "them", freed, worker.pid)


def post_fork(server, worker):
    """gunicorn hook, in the new worker: remember that this process is a worker."""
    mark_worker()
