"""The seed's scene: its read-modify-write counter under the real gunicorn, speaking the
part of forklock's HTTP API the demo uses, so the demo drives it as it drives its own server.

LOCK picks the lock every increment holds (made at import: in the master with --preload, in each
worker without):
  threading        one threading.Lock            (the seed's bug: fork copies it)
  multiprocessing  one multiprocessing.Lock      (a semaphore: shared if made before fork; one
                                                  lock for every key; never released if its
                                                  holder dies)
  forklock         forklock.LockDict(name=FORKLOCK_NAME)  (one lock per key, met by name)

POST /counter/KEY/increment?hold_ms=H[&timeout_ms=T]: under KEY's lock reads DATA_DIR/KEY,
sleeps H ms, writes value+1; 200 {"value", "pid", "waited_ms", "recovered_from"}, or 503
{"error", "owner_pid"} when T ms pass without the lock. GET /counter/KEY: {"value"}.
GET /locks: {"keys": [{"key", "owner_pid"}]}, the keys whose holder is inside (it marks itself).
"""
import json
import multiprocessing
import os
import threading
import time
from urllib.parse import parse_qs

import forklock

KIND = os.environ["LOCK"]
DATA = os.environ["DATA_DIR"]

if KIND == "threading":
    _one = threading.Lock()
elif KIND == "multiprocessing":
    _one = multiprocessing.Lock()
elif KIND == "forklock":
    locks = forklock.LockDict(name=os.environ["FORKLOCK_NAME"], share=True)
else:
    raise SystemExit(f"app.py: LOCK={KIND!r}: use threading, multiprocessing or forklock")


class Acquired:
    """The key's lock, held: how long it took, and the dead holder forklock took it from."""

    def __init__(self, key, timeout):
        start = time.monotonic()
        self.recovered_from = None
        if KIND == "forklock":
            self._guard = locks.lock(key, timeout=timeout)
            self._guard.__enter__()  # TimeoutError when timeout passes
            self.recovered_from = self._guard.recovered_from
        elif not (_one.acquire() if timeout is None else _one.acquire(timeout=timeout)):
            raise TimeoutError(key)  # (no timeout=-1: it means "for ever" only to threading)
        self.waited_ms = (time.monotonic() - start) * 1000

    def release(self):
        if KIND == "forklock":
            self._guard.__exit__(None, None, None)
        else:
            _one.release()


def _path(key, suffix=""):
    if not key or "/" in key or key.startswith("."):
        raise ValueError(f"bad key {key!r}")
    return os.path.join(DATA, key + suffix)


def _write(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _read(key):
    try:
        with open(_path(key)) as f:
            return int(f.read() or "0")
    except FileNotFoundError:
        return 0


def _owner(key):
    try:
        with open(_path(key, ".holder")) as f:
            return int(f.read())
    except (FileNotFoundError, ValueError):
        return 0


def increment(key, hold_ms, timeout):
    try:
        held = Acquired(key, timeout)
    except TimeoutError:
        return 503, {"error": f"key {key} is locked", "owner_pid": _owner(key)}
    try:
        _write(_path(key, ".holder"), str(os.getpid()))  # for GET /locks: who is inside
        value = _read(key)
        time.sleep(hold_ms / 1000)
        _write(_path(key), str(value + 1))
        try:
            os.unlink(_path(key, ".holder"))
        except FileNotFoundError:  # a lock that excludes nobody: another worker removed it
            pass
    finally:
        held.release()
    return 200, {"value": value + 1, "pid": os.getpid(), "waited_ms": held.waited_ms,
                 "recovered_from": held.recovered_from or 0}


def held_keys():
    keys = [name[:-len(".holder")] for name in os.listdir(DATA) if name.endswith(".holder")]
    return {"keys": [{"key": k, "owner_pid": _owner(k)} for k in sorted(keys)]}


def route(method, path, query):
    parts = path.strip("/").split("/")
    if method == "POST" and len(parts) == 3 and parts[0] == "counter" and parts[2] == "increment":
        hold_ms = int(query.get("hold_ms", ["0"])[0])
        timeout_ms = query.get("timeout_ms")
        return increment(parts[1], hold_ms, int(timeout_ms[0]) / 1000 if timeout_ms else None)
    if method == "GET" and len(parts) == 2 and parts[0] == "counter":
        return 200, {"value": _read(parts[1])}
    if method == "GET" and parts == ["locks"]:
        return 200, held_keys()
    return 404, {"error": f"no route {method} {path}"}


def app(environ, start_response):
    try:
        status, body = route(environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/"),
                             parse_qs(environ.get("QUERY_STRING", "")))
    except ValueError as error:
        status, body = 400, {"error": str(error)}
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}
    start_response(f"{status} {reason[status]}", [("Content-Type", "application/json"),
                                                  ("Content-Length", str(len(data)))])
    return [data]
