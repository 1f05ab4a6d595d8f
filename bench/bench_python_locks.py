#!/usr/bin/python3
"""forklock's Python module against the locks Python users have (Debian packages), in one run:
uncontended `with`, contended hand-off between processes on one key, a holder SIGKILLed, and
memory per key and import time. Prints figures; not a test.

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_python_locks.py [--seconds 1]
Peers: multiprocessing.Lock, threading.Lock (the floor), filelock, fasteners, portalocker,
sysv_ipc (python3-filelock python3-fasteners python3-portalocker python3-sysv-ipc).
"""
import argparse
import ctypes
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import forklock

TMP = tempfile.mkdtemp(prefix="bench-python-locks-")


class Peer:
    """A lock made before fork, usable in children: `with peer.cm(): ...`."""

    def __init__(self, name, make):
        self.name, self.make = name, make


def peers():
    import fasteners
    import filelock
    import portalocker
    import sysv_ipc
    path = os.path.join(TMP, "k.lock")
    sem = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, initial_value=1)
    mutex = forklock.LockTable(mode="mutex")
    semaphore = forklock.LockTable(mode="semaphore")
    out = [
        Peer("forklock mutex", lambda: mutex.lock("k")),
        Peer("forklock semaphore", lambda: semaphore.lock("k")),
        Peer("multiprocessing.Lock", lambda l=multiprocessing.Lock(): l),
        Peer("threading.Lock", lambda l=threading.Lock(): l),
        Peer("filelock", lambda: filelock.FileLock(path)),
        Peer("fasteners", lambda: fasteners.InterProcessLock(path + ".f")),
        Peer("portalocker", lambda: portalocker.Lock(path + ".p", timeout=60)),
        Peer("sysv_ipc", lambda: _SysV(sem)),
    ]
    return out, [mutex, semaphore], sem


class _SysV:
    def __init__(self, sem):
        self.sem = sem

    def __enter__(self):
        self.sem.acquire()

    def __exit__(self, *a):
        self.sem.release()


def uncontended(peer, seconds):
    """ns per `with` of one lock in one process (best of 3 runs)."""
    best = float("inf")
    for _ in range(3):
        n, start = 0, time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for _ in range(200):
                with peer.make():
                    pass
            n += 200
            now = time.perf_counter()
            if now >= deadline:
                break
        best = min(best, (now - start) / n * 1e9)
    return best


def contended(peer, procs, seconds, hold=0.0):
    """ops/s and hand-off latencies (unlock -> the next process's entry) with `procs`
    processes on one key; the clock is CLOCK_MONOTONIC, one for every process. With `hold`,
    each holds the key that long and then sleeps that long outside it, so the others are
    waiting when it unlocks: the latency is the waiter's wake-up (a polling lock's interval)."""
    shared = multiprocessing.RawArray(ctypes.c_longlong, 2)  # last owner, its unlock ns
    latencies = multiprocessing.RawArray(ctypes.c_longlong, 200000)
    counts = multiprocessing.RawArray(ctypes.c_longlong, procs + 1)  # ops per proc, hand-offs
    start_at = time.monotonic() + 0.3
    end_at = start_at + seconds
    pids = []
    for i in range(procs):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                while time.monotonic() < start_at:
                    pass
                ops = 0
                while time.monotonic() < end_at:
                    with peer.make():
                        now = time.monotonic_ns()
                        if shared[0] not in (0, i + 1):
                            h = counts[procs]
                            if h < len(latencies):
                                latencies[h] = now - shared[1]
                            counts[procs] = h + 1
                        ops += 1
                        if hold:
                            time.sleep(hold)
                        shared[0] = i + 1
                        shared[1] = time.monotonic_ns()
                    if hold:
                        time.sleep(hold)
                counts[i] = ops
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    handoffs = min(counts[procs], len(latencies))
    lat = sorted(latencies[:handoffs])
    p50 = lat[len(lat) // 2] / 1e3 if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e3 if lat else float("nan")
    return sum(counts[:procs]) / seconds, handoffs, p50, p99


def holder_killed(peer, supervise):
    """Seconds from SIGKILL of a holder to another process's entry, or None within 5 s."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        cm = peer.make()
        cm.__enter__()
        os.write(w, b"x")
        time.sleep(60)
        os._exit(0)
    os.read(r, 1)
    got = []

    def waiter():
        cm = peer.make()
        acquire = getattr(cm, "acquire", None)
        if isinstance(cm, forklock.Guard):
            try:
                with peer_table(peer).lock("k", timeout=5):
                    got.append(time.monotonic())
            except TimeoutError:
                pass
        elif peer.name == "multiprocessing.Lock":
            if cm.acquire(timeout=5):
                got.append(time.monotonic())
                cm.release()
        elif peer.name == "sysv_ipc":
            try:
                cm.sem.acquire(5)
                got.append(time.monotonic())
                cm.sem.release()
            except Exception:
                pass
        elif acquire is not None:
            try:
                acquire(timeout=5)
                got.append(time.monotonic())
                cm.release()
            except Exception:
                pass
    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)  # the waiter is waiting (a bench: a fixed pause is acceptable here)
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    if supervise:
        supervise(pid)  # as forklock.gunicorn.child_exit does in the master
    t.join()
    return got[0] - killed if got else None


def peer_table(peer):
    return peer.make.__closure__[0].cell_contents if peer.make.__closure__ else None


def memory_per_key(keys=65536):
    def rss():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    before = rss()
    t = forklock.LockTable(mode="mutex", capacity=keys)
    for i in range(keys):
        with t.lock(str(i)):
            pass
    table = (rss() - before) / keys
    import tracemalloc
    tracemalloc.start()
    d = {}
    for i in range(keys):  # the seed's LockDict: a dict of threading.Locks
        d.setdefault(str(i), threading.Lock())
    seed = tracemalloc.get_traced_memory()[0] / keys
    tracemalloc.stop()
    return table, seed


def import_time(module):
    env = dict(os.environ)
    best = float("inf")
    for _ in range(5):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                             capture_output=True, text=True, env=env).stderr
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[2].strip() == module:
                best = min(best, int(parts[1]) / 1e3)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    all_peers, tables, sem = peers()
    print(f"uncontended `with` (ns, best of 3 over {args.seconds:g} s), load {os.getloadavg()[0]:.1f}")
    base = {}
    for p in all_peers:
        base[p.name] = uncontended(p, args.seconds)
    mp = base["multiprocessing.Lock"]
    for p in all_peers:
        print(f"  {p.name:22} {base[p.name]:10.0f} ns  {base[p.name] / mp:6.2f}x mp.Lock")
    for name in ("forklock mutex", "forklock semaphore"):
        print(f"  {name}: {base['filelock'] / base[name]:.0f}x faster than filelock")
    print("\ncontended, one key: ops/s (empty sections); hand-off latency p50/p99 (us: unlock "
          "to the waiter's entry, sections of 1 ms with 1 ms between, so someone waits)")
    for procs in (2, 4):
        for p in all_peers:
            if p.name == "threading.Lock":
                continue  # excludes nobody across processes
            ops = contended(p, procs, args.seconds)[0]
            _, hand, p50, p99 = contended(p, procs, args.seconds, hold=0.001)
            print(f"  {procs} procs {p.name:22} {ops:10.0f} ops/s {hand:6d} hand-offs "
                  f"p50 {p50:9.1f} us  p99 {p99:9.1f} us")
    print("\nholder SIGKILLed: time until another process gets the key")
    supervisors = {"forklock semaphore": tables[1].release_owned_by}
    for p in all_peers:
        if p.name == "threading.Lock":
            continue
        took = holder_killed(p, supervisors.get(p.name))
        text = "never (waited 5 s)" if took is None else f"{took * 1e3:.1f} ms"
        print(f"  {p.name:22} {text}")
    table, seed = memory_per_key()
    print(f"\nmemory per key: forklock mutex table {table:.0f} B (RSS, 65536 keys bound); "
          f"the seed's dict of threading.Locks {seed:.0f} B (tracemalloc)")
    print(f"import time: forklock {import_time('forklock'):.1f} ms, "
          f"filelock {import_time('filelock'):.1f} ms, "
          f"multiprocessing {import_time('multiprocessing'):.1f} ms")
    sem.remove()


if __name__ == "__main__":
    main()
