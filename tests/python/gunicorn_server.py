"""The real gunicorn (Debian's) for the tests: a process group started on a free loopback port
and killed whole when the test ends, passed or not."""
import http.client
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import wait_until

APPS = Path(__file__).resolve().parent / "apps"


def _processes():
    """(pid, state, ppid, pgid) of every process, from /proc/*/stat."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        yield int(entry), fields[0], int(fields[1]), int(fields[2])


def children_of(pid):
    """The live pids whose parent is `pid`."""
    return sorted(p for p, state, ppid, _ in _processes() if ppid == pid and state != "Z")


def group_members(pgid):
    return [p for p, state, _, group in _processes() if group == pgid and state != "Z"]


class Gunicorn:
    """gunicorn -w WORKERS on 127.0.0.1, config apps/gunicorn_conf.py, app counter_app:app."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.data = tmp_path / "data"
        self.data.mkdir()
        self.log = tmp_path / "gunicorn.log"  # gunicorn's error log
        self.stderr = tmp_path / "stderr.log"  # the processes' own (Python warnings)
        self.proc = None
        self.port = None
        self.pids_seen = set()

    def start(self, env, preload=False, workers=4):
        full_env = dict(os.environ, DATA_DIR=str(self.data), **env)
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(APPS)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
        cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", "127.0.0.1:0",
               "-c", str(APPS / "gunicorn_conf.py"), "--chdir", str(APPS),
               "--error-logfile", str(self.log), "--graceful-timeout", "5"]
        if preload:
            cmd.append("--preload")
        with open(self.stderr, "wb") as out:
            self.proc = subprocess.Popen(cmd + ["counter_app:app"], env=full_env,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        assert wait_until(self._listening, timeout=30), self.log_text()
        assert wait_until(lambda: len(self.workers()) == workers, timeout=30), self.log_text()

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"gunicorn exited {self.proc.returncode}: {self.log_text()}")
        m = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", self.log_text())
        if m:
            self.port = int(m.group(1))
        return m is not None

    def workers(self):
        pids = children_of(self.proc.pid)
        self.pids_seen.update(pids)
        return pids

    def log_text(self):
        text = ""
        for f in (self.log, self.stderr):
            try:
                text += f.read_text()
            except FileNotFoundError:
                pass
        return text

    def get(self, path, timeout=30):
        """(status, body) of GET path; raises OSError/HTTPException on a broken connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def stop(self):
        """SIGTERM to the master (gunicorn's graceful stop), SIGKILL to the whole group after
        15 s; waits until none is left. Not SIGTERM to the group: a worker that gets a second
        SIGTERM while its interpreter exits dies of it, before its tables' destructors."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        self.pids_seen.add(pgid)
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            pass
        if group_members(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        assert wait_until(lambda: not group_members(pgid), timeout=10), group_members(pgid)
        self.proc = None


def leftover_shm(pids, name=None):
    """/dev/shm entries of these processes' anonymous tables, or of the named table."""
    marks = [f"forklock.{pid}." for pid in pids]
    if name:
        marks.append(f"forklock-{name}")
    return [n for n in os.listdir("/dev/shm") if any(m in n for m in marks)]
