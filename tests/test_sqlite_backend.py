"""The SQLite backend (railfleet/sqlite): transactions queue on a file lock.

Each test makes its own database file and connections (DatabaseWrapper built
directly, one per thread, as Django does), so nothing touches the test database.
"""

import contextlib
import os
import subprocess
import sys
import threading
import time

import pytest
from django.db import OperationalError, connections, transaction

from railfleet.database import database_config
from railfleet.sqlite.base import DatabaseWrapper, WriteLock

# Holds the lock file from another process until its stdin closes.
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def settings_for(url: str, base_dir) -> dict:
    """A complete settings dict (Django fills these defaults in for configured databases)."""
    settings = database_config(url, base_dir)
    defaults = {"TIME_ZONE": None, "ATOMIC_REQUESTS": False, "AUTOCOMMIT": True}
    return defaults | {"CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False} | settings


def wrapper(path, *, timeout: float = 5) -> DatabaseWrapper:
    settings = settings_for(f"sqlite:///{path}", path.parent)
    settings["OPTIONS"]["timeout"] = timeout
    return DatabaseWrapper(settings, alias=f"locktest-{threading.get_ident()}")


@contextlib.contextmanager
def write_transaction(db: DatabaseWrapper):
    """What atomic() does: BEGIN IMMEDIATE, then COMMIT, or ROLLBACK on error."""
    db.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    try:
        yield db.cursor()
    except BaseException:
        db.rollback()
        raise
    else:
        db.commit()
    finally:
        db.set_autocommit(True)


@pytest.fixture(autouse=True)
def _own_databases(django_db_blocker):
    """These connections are to files of the test's own, not the test database."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "lock.sqlite3"
    db = wrapper(path)
    db.cursor().execute("CREATE TABLE t (n INTEGER)")
    yield path
    db.close()


def test_the_default_database_uses_this_backend(tmp_path):
    assert database_config(None, tmp_path)["ENGINE"] == "railfleet.sqlite"


def test_a_transaction_holds_the_lock_until_commit(database):
    db = wrapper(database)
    with write_transaction(db) as cursor:
        cursor.execute("INSERT INTO t VALUES (1)")
        assert db.connection.write_lock.held
    assert not db.connection.write_lock.held
    assert db.cursor().execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_a_rollback_releases_the_lock(database):
    db = wrapper(database)
    with pytest.raises(ZeroDivisionError), write_transaction(db) as cursor:
        cursor.execute("INSERT INTO t VALUES (1)")
        1 / 0  # noqa: B018
    assert not db.connection.write_lock.held
    assert db.cursor().execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_second_writer_waits_for_the_first_and_then_writes(database):
    first_in = threading.Event()
    order = []

    def first():
        db = wrapper(database)
        with write_transaction(db) as cursor:
            first_in.set()
            time.sleep(0.2)
            cursor.execute("INSERT INTO t VALUES (1)")
            order.append("first committed")
        db.close()

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    db = wrapper(database)
    with write_transaction(db) as cursor:
        order.append("second began")
        cursor.execute("INSERT INTO t VALUES (2)")
    thread.join(5)

    assert order == ["first committed", "second began"]
    assert db.cursor().execute("SELECT n FROM t ORDER BY rowid").fetchall() == [(1,), (2,)]


def test_many_writers_in_threads_all_commit(database):
    errors = []

    def writer(n):
        db = wrapper(database)
        try:
            for i in range(25):
                with write_transaction(db) as cursor:
                    cursor.execute("INSERT INTO t VALUES (%s)", [n * 100 + i])
        except Exception as exc:  # collected, and asserted below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert wrapper(database).cursor().execute("SELECT count(*) FROM t").fetchone() == (200,)


def test_a_lock_held_by_another_process_times_out_as_database_is_locked(database):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, f"{database}-writelock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        db = wrapper(database, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"), write_transaction(db):
            pass
        assert 0.3 <= time.monotonic() - started < 3
        assert not db.connection.write_lock.held
    finally:
        holder.communicate("", timeout=5)
    with write_transaction(db) as cursor:  # free again once the other process let go
        cursor.execute("INSERT INTO t VALUES (1)")


def test_the_lock_is_not_reentrant_across_threads_but_released_by_close(tmp_path):
    path = str(tmp_path / "x-writelock")
    held = WriteLock(path)
    held.acquire(timeout=1)
    other = WriteLock(path)
    failed = []
    thread = threading.Thread(target=lambda: _try(other, failed))
    thread.start()
    thread.join(5)
    assert failed == ["database is locked"]

    held.close()
    other.acquire(timeout=1)
    assert other.held
    other.close()


def _try(lock: WriteLock, failed: list) -> None:
    try:
        lock.acquire(timeout=0.1)
    except OperationalError as exc:
        failed.append(str(exc))


def test_djangos_own_atomic_takes_the_lock(database):
    """atomic() itself, not a copy of what it does: were a Django upgrade to begin its
    transactions another way, the writers would no longer queue."""
    db = wrapper(database)
    connections[db.alias] = db
    try:
        with transaction.atomic(using=db.alias):
            db.cursor().execute("INSERT INTO t VALUES (1)")
            assert db.connection.write_lock.held
        assert not db.connection.write_lock.held
    finally:
        del connections[db.alias]
        db.close()


def test_an_in_memory_database_takes_no_lock(tmp_path):
    db = DatabaseWrapper(settings_for("sqlite://:memory:", tmp_path), alias="memorytest")
    db.cursor().execute("CREATE TABLE t (n INTEGER)")
    with write_transaction(db) as cursor:
        cursor.execute("INSERT INTO t VALUES (1)")
    assert db.connection.write_lock is None


def test_a_forked_child_does_not_inherit_a_held_thread_lock(tmp_path):
    """Forked while a thread of the parent held the lock, the child can take it once the
    parent has let it go: its copy of the parent's thread lock, held for ever in the
    child, is not what it queues on."""
    path = str(tmp_path / "f-writelock")
    lock = WriteLock(path)
    lock.acquire(timeout=1)
    released_r, released_w = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # the child: waits for the parent's release, then takes the lock
            os.close(released_w)
            os.read(released_r, 1)
            try:
                WriteLock(path).acquire(timeout=0.5)
            except OperationalError:
                os._exit(1)
            os._exit(0)
        os.close(released_r)
        lock.release()
        os.write(released_w, b"x")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(released_w)
        lock.close()


def test_the_lock_file_gets_the_database_files_permissions(tmp_path):
    path = tmp_path / "shared.sqlite3"
    path.touch()
    path.chmod(0o664)
    db = wrapper(path)
    with write_transaction(db) as cursor:
        cursor.execute("CREATE TABLE t (n INTEGER)")
    db.close()

    assert (tmp_path / "shared.sqlite3-writelock").stat().st_mode & 0o777 == 0o664


def test_an_existing_read_only_lock_file_is_enough(database):
    lock_file = database.parent / f"{database.name}-writelock"
    lock_file.touch()
    lock_file.chmod(0o444)
    db = wrapper(database)
    with write_transaction(db) as cursor:
        cursor.execute("INSERT INTO t VALUES (1)")
        assert db.connection.write_lock.held
    assert db.cursor().execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_before_unlock_runs_after_the_commit_while_the_lock_is_still_held(database):
    db, other = wrapper(database), wrapper(database)
    seen = []

    def announce():
        rows = other.cursor().execute("SELECT count(*) FROM t").fetchone()
        seen.append((rows, db.connection.write_lock.held))

    with write_transaction(db) as cursor:
        cursor.execute("INSERT INTO t VALUES (1)")
        db.connection.before_unlock(announce)
        assert seen == []  # not before the commit
    assert seen == [((1,), True)]  # committed (another connection sees it), still locked
    assert not db.connection.write_lock.held
    with write_transaction(db) as cursor:  # each callback runs once
        cursor.execute("INSERT INTO t VALUES (2)")
    assert len(seen) == 1


def test_before_unlock_never_runs_for_a_rollback(database):
    db = wrapper(database)
    seen = []
    with pytest.raises(ZeroDivisionError), write_transaction(db) as cursor:
        cursor.execute("INSERT INTO t VALUES (1)")
        db.connection.before_unlock(lambda: seen.append("rolled back"))
        1 / 0  # noqa: B018
    with write_transaction(db) as cursor:
        cursor.execute("INSERT INTO t VALUES (2)")
    assert seen == []


def test_a_failing_before_unlock_callback_neither_fails_the_commit_nor_keeps_the_lock(
    database, caplog
):
    db = wrapper(database)

    def broken():
        raise OSError("the doorbell's directory is gone")

    with write_transaction(db) as cursor:
        cursor.execute("INSERT INTO t VALUES (1)")
        db.connection.before_unlock(broken)
    assert not db.connection.write_lock.held
    assert wrapper(database).cursor().execute("SELECT count(*) FROM t").fetchone() == (1,)
    assert "the doorbell's directory is gone" in caplog.text
