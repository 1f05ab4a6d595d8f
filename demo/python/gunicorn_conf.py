"""gunicorn's config for the demo's scene (app.py): the recipe of docs/python.md (forklock's
hooks: the master frees a dead worker's keys; harmless for the other locks), and a line in the
log when a worker has loaded the app, so the demo knows when all of them can serve (gunicorn's
own "Booting worker" comes before the app is imported)."""
from forklock.gunicorn import child_exit, post_fork  # noqa: F401  (gunicorn hooks)


def post_worker_init(worker):
    worker.log.info("Worker ready with pid: %s", worker.pid)
