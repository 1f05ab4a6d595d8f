"""The seed's bug and its fix under the real gunicorn (Debian's, -w 4): read-modify-writes of
one counter file from concurrent requests, and a worker SIGKILLed while it holds the key."""
import http.client
import os
import signal
import threading
import time

import pytest

from conftest import wait_until
from gunicorn_server import Gunicorn, leftover_shm

try:
    import gunicorn  # noqa: F401
except ImportError as e:
    raise SystemExit(f"the gunicorn tests need gunicorn: apt-get install gunicorn ({e})") from e


@pytest.fixture
def server(tmp_path):
    s = Gunicorn(tmp_path)
    yield s
    s.stop()


def increments(server, key, total, clients=8):
    """Sends `total` GET /incr/key from `clients` threads; returns how many were answered 200."""
    acked, lock = [0], threading.Lock()
    left = [total]

    def client():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            status, _ = server.get(f"/incr/{key}")
            if status == 200:
                with lock:
                    acked[0] += 1
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "clients did not finish"
    return acked[0]


def counter(server, key):
    status, body = server.get(f"/get/{key}")
    assert status == 200
    return int(body)


def test_a_threading_lock_loses_updates_across_gunicorn_workers(server):
    server.start({"LOCK": "thread", "DELAY_MS": "5"}, preload=True)
    acked = increments(server, "k", 200)
    assert acked == 200
    assert counter(server, "k") < acked  # the seed's bug, seen


CELLS = [  # (mode, how the workers come to share the table)
    ("semaphore", "preload"), ("semaphore", "on_starting"), ("semaphore", "named"),
    ("mutex", "preload"), ("mutex", "on_starting"), ("mutex", "named"),
    ("flock", "preload"), ("flock", "in each worker"),
]


def start_cell(server, mode, how, table_name, delay_ms):
    env = {"LOCK": "forklock", "FORKLOCK_MODE": mode, "DELAY_MS": str(delay_ms)}
    if mode == "flock":
        lock_dir = server.tmp / "locks"
        lock_dir.mkdir()
        env["LOCK_DIR"] = str(lock_dir)
    if how == "named":
        env["FORKLOCK_NAME"] = table_name
    if how == "on_starting":
        env["ON_STARTING"] = "1"
    server.start(env, preload=(how == "preload"))


@pytest.mark.parametrize("mode, how", CELLS)
def test_forklock_loses_no_update_across_gunicorn_workers(server, mode, how, table_name):
    start_cell(server, mode, how, table_name, delay_ms=5)
    acked = increments(server, "k", 200)
    assert acked == 200
    assert counter(server, "k") == 200
    assert "PrivateTableWarning" not in server.log_text()
    pids = set(server.pids_seen)
    server.stop()
    assert leftover_shm(pids, table_name if how == "named" else None) == []


def test_an_anonymous_table_made_in_each_worker_warns_naming_the_fix(server):
    server.start({"LOCK": "forklock", "FORKLOCK_MODE": "mutex", "DELAY_MS": "5"})
    acked = increments(server, "k", 200)
    assert counter(server, "k") < acked  # the seed's bug, now with a warning in the log
    log = server.log_text()
    assert "PrivateTableWarning" in log and "--preload" in log and "name=" in log


def hold_then_kill(server, key):
    """A worker holds `key` (GET /hold/key); returns (its pid, the holding request's thread)."""
    holding = server.data / "holding"

    def hold():
        try:
            server.get(f"/hold/{key}", timeout=60)
        except (OSError, http.client.HTTPException):
            pass  # its worker is killed: the connection breaks
    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert wait_until(holding.exists, timeout=20)
    return int(holding.read_text()), t


@pytest.mark.parametrize("mode, how", [("semaphore", "preload"), ("semaphore", "named"),
                                       ("mutex", "on_starting"), ("flock", "in each worker")])
def test_a_worker_killed_holding_a_key_gives_it_back_at_once(server, mode, how, table_name):
    start_cell(server, mode, how, table_name, delay_ms=0)
    holder, hold_thread = hold_then_kill(server, "k")
    first = []
    acked = []

    def after_kill():
        acked.append(increments(server, "k", 40, clients=4))
    clients = threading.Thread(target=after_kill)
    killed = time.monotonic()
    os.kill(holder, signal.SIGKILL)
    clients.start()
    assert wait_until(lambda: counter(server, "k") > 0, timeout=10, interval=0.001)
    first.append(time.monotonic() - killed)
    clients.join(timeout=120)
    assert first[0] < 1.0, f"the key answered {first[0]:.3f} s after the kill"
    assert acked == [40] and counter(server, "k") == 40  # every acknowledged increment
    assert wait_until(lambda: len(server.workers()) == 4 and holder not in server.workers(),
                      timeout=30)  # gunicorn respawned the worker
    hold_thread.join(timeout=5)
    print(f"{mode}/{how}: the key answered {first[0] * 1000:.1f} ms after SIGKILL")
    pids = set(server.pids_seen)
    server.stop()
    assert leftover_shm(pids, table_name if how == "named" else None) == []


def test_semaphore_mode_without_child_exit_keeps_a_dead_holders_key(server):
    server.start({"LOCK": "forklock", "FORKLOCK_MODE": "semaphore", "CHILD_EXIT": "0"},
                 preload=True)
    holder, _ = hold_then_kill(server, "k")
    os.kill(holder, signal.SIGKILL)
    assert wait_until(lambda: holder not in server.workers(), timeout=10)
    with pytest.raises((OSError, http.client.HTTPException)):  # socket.timeout is an OSError
        server.get("/incr/k", timeout=2)
