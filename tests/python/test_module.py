"""forklock's contract in one process: modes, keys, options, errors, timeouts, threads."""
import threading
import time

import pytest

import forklock
from conftest import wait_until


def held_elsewhere(table, key):
    """True if another thread of this process cannot take `key` now."""
    out = []

    def attempt():
        g = table.try_lock(key)
        out.append(g is None)
        if g is not None:
            g.unlock()
    t = threading.Thread(target=attempt)
    t.start()
    t.join()
    return out[0]


def test_a_held_key_is_refused_to_another_thread_in_every_locking_mode(any_mode_table):
    with any_mode_table.lock("k") as g:
        assert g.held and g.waited == 0.0 and g.recovered_from is None
        assert held_elsewhere(any_mode_table, "k")
        assert not held_elsewhere(any_mode_table, "other")
    assert not held_elsewhere(any_mode_table, "k")


def test_mode_none_excludes_nobody():
    t = forklock.LockTable(mode="none")
    with t.lock("k"):
        assert not held_elsewhere(t, "k")


def test_process_is_the_mutex_mode_and_the_default():
    assert forklock.LockTable().mode == "mutex"
    assert forklock.LockTable(mode="process").mode == "mutex"
    assert "EOWNERDEAD" in forklock.explain("mutex") or forklock.explain("mutex")


def test_a_str_key_and_its_utf8_bytes_are_one_key(any_mode_table):
    with any_mode_table.lock("café"):
        assert held_elsewhere(any_mode_table, "café".encode())
        assert not held_elsewhere(any_mode_table, "cafe")


def test_keys_of_1_to_128_bytes_are_accepted_and_others_are_value_errors(any_mode_table):
    with any_mode_table.lock(b"\x00"), any_mode_table.lock("x" * 128):
        pass
    if any_mode_table.mode != "flock":  # flock: "%C3%A9" * 64 is past NAME_MAX, an OSError
        with any_mode_table.lock("é" * 64):
            pass
    for bad in ["", b"", "x" * 129, "é" * 65]:
        with pytest.raises(ValueError, match="1 to 128 bytes"):
            any_mode_table.lock(bad)
    with pytest.raises(ValueError):  # UnicodeEncodeError is a ValueError
        any_mode_table.lock("\ud800")
    for bad in [1, None, ["k"]]:
        with pytest.raises(TypeError, match="str or bytes"):
            any_mode_table.lock(bad)


@pytest.mark.parametrize("options, message", [
    (dict(mode="semaphores"), "mode must be one of"),
    (dict(capacity=0), "capacity must be"),
    (dict(capacity=-5), "capacity must be"),
    (dict(capacity=(1 << 20) + 1), "capacity must be"),
    (dict(name="a/b"), "made of A-Z"),
    (dict(name="x" * 65), "1 to 64"),
    (dict(mode="thread", name="t"), "cannot be found by name"),
    (dict(mode="flock"), "needs an existing lock_dir"),
    (dict(mode="flock", lock_dir="/nonexistent/forklock"), "needs an existing lock_dir"),
])
def test_bad_options_are_value_errors_that_say_why(options, message):
    with pytest.raises(ValueError, match=message):
        forklock.LockTable(**options)


def test_options_of_the_wrong_type_are_type_errors():
    with pytest.raises(TypeError):
        forklock.LockTable(mode=3)
    with pytest.raises(TypeError):
        forklock.LockTable(name=b"bytes")


def test_a_full_table_raises_table_full_error():
    t = forklock.LockTable(mode="mutex", capacity=1)
    with t.lock("a"):
        with pytest.raises(forklock.TableFullError):
            t.try_lock("b")
    with t.lock("b"):
        pass
    assert t.stats()["full_errors"] == 1
    assert issubclass(forklock.TableFullError, forklock.LockError)
    assert issubclass(forklock.LockError, RuntimeError)


def test_a_named_table_in_use_is_refused_without_share(table_name):
    with forklock.LockTable(mode="semaphore", name=table_name) as a:
        assert a.origin == "created" and a.name == table_name
        with pytest.raises(forklock.LockNameError):
            forklock.LockTable(mode="semaphore", name=table_name)
        with pytest.raises(forklock.LockNameError):  # another mode: another layout
            forklock.LockTable(mode="mutex", name=table_name, share=True)
        with forklock.LockTable(mode="semaphore", name=table_name, share=True) as b:
            assert b.origin == "joined"
            with a.lock("k"):
                assert b.try_lock("k") is None


def test_an_unreachable_lock_server_is_a_lock_server_error():
    with pytest.raises(forklock.LockServerError, match="Connection refused"):
        forklock.LockTable(mode="postgres", url="postgresql://127.0.0.1:1/x?connect_timeout=2")


def test_the_os_refusing_is_an_os_error_with_errno(tmp_path):
    t = forklock.LockTable(mode="flock", lock_dir="/proc")  # a directory nobody can create in
    with pytest.raises(OSError) as e:
        t.try_lock("k")
    assert e.value.errno is not None and e.value.errno > 0


def test_a_timeout_raises_timeout_error_after_about_that_long(any_mode_table):
    holder = any_mode_table.try_lock("k")
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="within 0.2 s"):
            with any_mode_table.lock("k", timeout=0.2):
                pass
        took = time.monotonic() - start
        assert 0.2 <= took < 2.0
        with pytest.raises(TimeoutError):
            with any_mode_table.lock("k", timeout=0):
                pass
    finally:
        holder.unlock()
    with any_mode_table.lock("k", timeout=0) as g:
        assert g.held


@pytest.mark.parametrize("timeout, error", [(-1, ValueError), (float("nan"), ValueError),
                                            ("1", TypeError)])
def test_bad_timeouts_are_refused(timeout, error):
    with pytest.raises(error):
        forklock.LockTable().lock("k", timeout=timeout)


def test_try_lock_returns_a_held_guard_or_none():
    t = forklock.LockTable(mode="semaphore")
    g = t.try_lock("k")
    assert g and g.held and g.key == "k"
    with g:  # entering a try_lock guard keeps it, leaving unlocks
        assert t.owner("k") == g.pid
        assert held_elsewhere(t, "k")
    assert not g.held and t.owner("k") is None


def test_a_guard_is_not_reentrant_and_cannot_unlock_twice():
    t = forklock.LockTable()
    g = t.lock("k")
    with g:
        with pytest.raises(RuntimeError, match="not reentrant"):
            g.__enter__()
    with pytest.raises(RuntimeError, match="does not hold"):
        g.unlock()
    with g:  # usable again after it let go, as a threading.Lock
        assert g.held


def test_a_guard_belongs_to_the_thread_that_locked_it():
    t = forklock.LockTable()
    g = t.try_lock("k")
    errors = []

    def other():
        try:
            g.unlock()
        except RuntimeError as e:
            errors.append(str(e))
    th = threading.Thread(target=other)
    th.start()
    th.join()
    assert errors and "thread" in errors[0]
    assert g.held
    g.unlock()


def increments_from_threads(table, threads=4, each=50):
    """Read-modify-writes of one Python counter under `table`'s key "counter", from threads
    that hand the GIL over inside the section; returns the final count."""
    counter = {"n": 0}

    def work():
        for _ in range(each):
            with table.lock("counter"):
                v = counter["n"]
                time.sleep(0.0002)
                counter["n"] = v + 1
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return counter["n"]


def test_threads_of_one_process_lose_no_read_modify_write(any_mode_table):
    assert increments_from_threads(any_mode_table) == 200


def test_without_a_lock_the_same_threads_lose_updates():  # the test above can fail
    assert increments_from_threads(forklock.LockTable(mode="none")) < 200


def test_a_waiting_thread_releases_the_gil_and_wakes_when_the_holder_unlocks(any_mode_table):
    holder = any_mode_table.try_lock("k")
    entered = []

    def waiter():
        with any_mode_table.lock("k") as g:
            entered.append((time.monotonic(), g.waited))
    th = threading.Thread(target=waiter)
    th.start()
    assert wait_until(lambda: any_mode_table.key_stats()[0]["waiters"] == 1
                      if any_mode_table.mode != "thread" else True, timeout=5)
    spins, end = 0, time.monotonic() + 0.3
    while time.monotonic() < end:  # this thread runs Python while the other waits
        spins += 1
    assert spins > 1000
    unlocked = time.monotonic()
    holder.unlock()
    th.join(timeout=10)
    assert entered, "the waiter never entered"
    woke_after = entered[0][0] - unlocked
    assert woke_after < 1.0, woke_after
    assert entered[0][1] >= 0.3


def test_stats_and_key_stats_count_acquisitions_and_waits():
    t = forklock.LockTable(mode="mutex")
    for _ in range(3):
        with t.lock("k"):
            pass
    ks = t.key_stats()
    assert ks[0]["key"] == b"k" and ks[0]["acquisitions"] == 3 and ks[0]["owner_pid"] == 0
    assert t.stats()["keys"] == 1 and t.stats()["shared"] is True


def test_close_frees_the_table_and_refuses_while_a_key_is_held(table_name):
    t = forklock.LockTable(mode="mutex", name=table_name)
    g = t.try_lock("k")
    with pytest.raises(ValueError, match="still holds"):
        t.close()
    g.unlock()
    t.close()
    assert t.closed and "closed" in repr(t)
    with pytest.raises(ValueError, match="closed"):
        t.lock("k")
    # the fixture checks that the name left /dev/shm


def test_lockdict_is_the_seeds_shape_with_the_same_options(lock_dir):
    locks = forklock.LockDict(mode="flock", lock_dir=lock_dir)
    with locks.lock("url"):
        assert (lock_dir / "url.lock").exists()
    assert isinstance(locks, forklock.LockTable)
