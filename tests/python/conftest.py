"""Fixtures of the Python module's tests (run by `meson test --suite python`, or
`PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python`)."""
import os
import time

import pytest

try:
    import forklock
except ImportError as e:  # a failure naming the fix, never a skip
    raise SystemExit(
        f"cannot import forklock ({e}): build it with `apt-get install pybind11-dev "
        "python3-pybind11 python3-dev && meson setup --reconfigure build && ninja -C build "
        "forklock-python`, and run with PYTHONPATH=build/python") from e


def wait_until(condition, timeout=10.0, interval=0.002):
    """Polls `condition` until it is true or `timeout` s passed; evaluated once more at the
    deadline. The tests' one way to wait for another thread or process."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return condition()
        time.sleep(interval)
    return True


def shm_names(word):
    return sorted(n for n in os.listdir("/dev/shm") if word in n)


@pytest.fixture
def table_name(request):
    """A table name of this test only; nothing named with it may stay in /dev/shm."""
    name = f"pytest{os.getpid()}-{request.node.name[:30]}".replace("[", "-").replace("]", "")
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    yield name
    assert wait_until(lambda: not shm_names(name), timeout=5), shm_names(name)


@pytest.fixture
def children():
    """Fork children of the test: killed and reaped when it ends, passed or not."""
    pids = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def fork_child(children, body):
    """Runs body() in a fork child; its exit code is 0 if it returned True, 1 if it returned
    anything else, 2 if it raised. Returns the pid (also in `children`)."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            code = 0 if body() is True else 1
        finally:
            os._exit(code)
    children.append(pid)
    return pid


def exit_code(pid, timeout=10.0):
    """Waits (bounded) for a fork child and returns its exit code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.002)
    raise AssertionError(f"child {pid} did not exit within {timeout} s")


@pytest.fixture
def lock_dir(tmp_path):
    d = tmp_path / "locks"
    d.mkdir()
    return d


@pytest.fixture(params=["thread", "semaphore", "mutex", "flock"])
def any_mode_table(request, lock_dir):
    with forklock.LockTable(mode=request.param, lock_dir=lock_dir) as t:
        yield t


@pytest.fixture(params=["semaphore", "mutex", "flock"])
def shared_table(request, lock_dir):
    with forklock.LockTable(mode=request.param, lock_dir=lock_dir) as t:
        yield t
