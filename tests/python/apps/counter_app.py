"""The seed's read-modify-write counter (shared/peers/counter_app.py) under the real gunicorn,
with forklock in place of its lock.

LOCK=thread: one threading.Lock (the seed's bug: each worker has its own).
LOCK=forklock: forklock.LockDict(mode=FORKLOCK_MODE, name=FORKLOCK_NAME or None, share=True,
lock_dir=LOCK_DIR), one lock per key.
GET /incr/KEY: reads DATA_DIR/KEY, sleeps DELAY_MS, writes value+1; answers "VALUE PID".
GET /get/KEY: the value. GET /hold/KEY: locks KEY, writes DATA_DIR/holding (this pid) and sleeps
up to 60 s holding it (a test SIGKILLs the worker meanwhile).
"""
import os
import threading
import time

import forklock

MODE = os.environ.get("LOCK", "forklock")
DATA = os.environ["DATA_DIR"]
DELAY = float(os.environ.get("DELAY_MS", "0")) / 1000.0

if MODE == "thread":
    _one = threading.Lock()
    lock_of = lambda key: _one  # noqa: E731
else:
    locks = forklock.LockDict(mode=os.environ["FORKLOCK_MODE"],
                              name=os.environ.get("FORKLOCK_NAME") or None, share=True,
                              lock_dir=os.environ.get("LOCK_DIR") or None)
    lock_of = locks.lock


def _read(key):
    try:
        with open(os.path.join(DATA, key)) as f:
            return int(f.read() or "0")
    except FileNotFoundError:
        return 0


def _incr(key):
    with lock_of(key):
        v = _read(key)
        if DELAY:
            time.sleep(DELAY)
        tmp = os.path.join(DATA, f"{key}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w") as f:
            f.write(str(v + 1))
        os.replace(tmp, os.path.join(DATA, key))
        return v + 1


def _hold(key):
    with lock_of(key):
        tmp = os.path.join(DATA, "holding.tmp")
        with open(tmp, "w") as f:
            f.write(str(os.getpid()))
        os.replace(tmp, os.path.join(DATA, "holding"))
        time.sleep(60)
    return 0


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path.startswith("/incr/"):
        body = f"{_incr(path[6:])} {os.getpid()}\n"
    elif path.startswith("/get/"):
        body = f"{_read(path[5:])}\n"
    elif path.startswith("/hold/"):
        body = f"{_hold(path[6:])}\n"
    else:
        body = f"ok {os.getpid()}\n"
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(data)))])
    return [data]
