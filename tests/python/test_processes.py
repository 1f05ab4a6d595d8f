"""forklock across processes: fork children, holder death, named tables, Ctrl-C in a wait."""
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import pytest

import forklock
from conftest import exit_code, fork_child, wait_until


def test_a_key_held_by_the_parent_is_refused_to_a_fork_child(shared_table, children):
    with shared_table.lock("k"):
        pid = fork_child(children, lambda: shared_table.try_lock("k") is None)
        assert exit_code(pid) == 0
    pid = fork_child(children, lambda: shared_table.try_lock("k") is not None)
    assert exit_code(pid) == 0


def test_a_guard_that_crossed_fork_raises_in_the_child_and_stays_the_parents(
        shared_table, children):
    guard = shared_table.lock("k")
    with guard:
        def child():
            for use in (guard.unlock, guard.still_held, lambda: guard.__exit__(None, None, None),
                        guard.__enter__):
                try:
                    use()
                    return False
                except RuntimeError as e:
                    if "fork() child" not in str(e):
                        return False
            del child_refs[:]  # dropping it in the child leaves the parent's key alone
            return not guard.held and shared_table.try_lock("k") is None
        child_refs = [guard]
        pid = fork_child(children, child)
        assert exit_code(pid) == 0
        assert guard.held and guard.still_held()
        assert shared_table.owner("k") == os.getpid()
    assert shared_table.owner("k") is None


def hold_and_die(table, key):
    guard = table.lock(key)
    guard.__enter__()
    os.kill(os.getpid(), signal.SIGKILL)


def test_mutex_mode_recovers_a_key_whose_holder_was_killed(children):
    t = forklock.LockTable(mode="mutex")
    pid = fork_child(children, lambda: hold_and_die(t, "k"))
    assert exit_code(pid) == -signal.SIGKILL
    start = time.monotonic()
    with t.lock("k", timeout=5) as g:
        assert g.recovered_from == pid
    assert time.monotonic() - start < 1.0


def test_semaphore_mode_frees_a_dead_holders_key_on_release_owned_by(children):
    t = forklock.LockTable(mode="semaphore")
    pid = fork_child(children, lambda: hold_and_die(t, "k"))
    assert exit_code(pid) == -signal.SIGKILL  # reaped: now it may be released
    assert t.try_lock("k") is None
    assert t.release_owned_by(pid) == 1
    with t.lock("k", timeout=5):
        pass
    assert t.key_stats()[0]["recoveries"] == 1


def test_release_owned_by_refuses_a_live_process_or_itself(children):
    t = forklock.LockTable(mode="semaphore")
    r, w = os.pipe()
    pid = fork_child(children, lambda: os.read(r, 1) == b"x")
    with pytest.raises(ValueError, match="alive"):
        t.release_owned_by(pid)
    with pytest.raises(ValueError, match="not another process"):
        t.release_owned_by(os.getpid())
    os.write(w, b"x")
    assert exit_code(pid) == 0
    assert t.release_owned_by(pid) == 0


HOLDER = """
import sys, forklock
t = forklock.LockTable(mode=sys.argv[1], name=sys.argv[2], share=True)
with t.lock("k"):
    print("held", flush=True)
    sys.stdin.readline()
t.close()
"""


@pytest.mark.parametrize("mode", ["semaphore", "mutex"])
def test_a_named_table_is_shared_by_processes_that_never_forked_from_each_other(
        mode, table_name):
    with forklock.LockTable(mode=mode, name=table_name, share=True) as t:
        p = subprocess.Popen([sys.executable, "-c", HOLDER, mode, table_name],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline() == "held\n"
            assert t.try_lock("k") is None
            p.stdin.write("\n")
            p.stdin.flush()
            with t.lock("k", timeout=10):
                pass
            assert p.wait(timeout=10) == 0
        finally:
            p.kill()
            p.wait()


def test_ctrl_c_interrupts_a_wait_with_keyboard_interrupt(shared_table):
    holder = []
    have, done = threading.Event(), threading.Event()

    def hold():
        with shared_table.lock("k"):
            have.set()
            done.wait(20)
    th = threading.Thread(target=hold)
    th.start()
    try:
        assert have.wait(10)
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
        start = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            with shared_table.lock("k"):
                holder.append("entered")
        took = time.monotonic() - start
        assert not holder
        assert 0.2 <= took < 1.5, took  # the 50 ms slices bound the delay
    finally:
        done.set()
        th.join()
    with shared_table.lock("k", timeout=5):  # the interrupted wait left nothing behind
        pass


def test_an_anonymous_table_made_in_a_gunicorn_worker_warns_naming_the_fix(children):
    import forklock._fork_checks as checks

    def child():
        sys.modules.setdefault("gunicorn", type(sys)("gunicorn"))
        checks.mark_worker()  # as forklock.gunicorn.post_fork does
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            forklock.LockTable(mode="mutex")
            forklock.LockTable(mode="flock", lock_dir="/tmp")  # shared by files: no warning
        texts = [str(w.message) for w in caught if w.category is forklock.PrivateTableWarning]
        return len(texts) == 1 and "--preload" in texts[0] and "name=" in texts[0]
    pid = fork_child(children, child)
    assert exit_code(pid) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        forklock.LockTable(mode="mutex")  # not a worker: no warning
