"""gunicorn's config for the demo's scene (app.py). The forklock rows use the recipe of
docs/python.md; every row logs when a worker has loaded the app, so the demo knows when all
of them can serve (gunicorn's own "Booting worker" comes before the app is imported)."""
import os

if os.environ.get("LOCK") == "forklock":
    from forklock.gunicorn import child_exit, post_fork  # noqa: F401  (gunicorn hooks)


def post_worker_init(worker):
    worker.log.info("Worker ready with pid: %s", worker.pid)
