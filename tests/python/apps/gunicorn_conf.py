"""The gunicorn config the tests use: the forklock recipe of docs/python.md.
ON_STARTING=1 imports the app in the master before fork (the table is made there, inherited by
every worker), the way to share an anonymous table without --preload."""
import os

from forklock.gunicorn import post_fork  # noqa: F401  (gunicorn hooks)

if os.environ.get("CHILD_EXIT", "1") == "1":  # CHILD_EXIT=0: the test that shows it is needed
    from forklock.gunicorn import child_exit  # noqa: F401


if os.environ.get("FORKLOCK_NAME"):
    # A named table the workers open without --preload: the master opens it too, so that
    # child_exit (which frees keys in the tables the master made) sees it.
    import forklock
    shared_by_name = forklock.LockTable(mode=os.environ["FORKLOCK_MODE"],
                                        name=os.environ["FORKLOCK_NAME"], share=True)


def on_starting(server):
    if os.environ.get("ON_STARTING") == "1":
        import counter_app  # noqa: F401
