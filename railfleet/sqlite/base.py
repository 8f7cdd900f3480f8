"""Django's SQLite backend, with the writers of one database file queued on a lock.

SQLite has one write lock per database. A writer that finds it taken waits in
SQLite's busy handler, which sleeps 1, 2, 5, 10 ... then 100 ms between tries,
in no order: under a steady stream of short write transactions (several web
workers' threads and the dispatcher) a writer can lose several times and wait
hundreds of milliseconds for a lock that was free most of that time: the
benchmark's p99 latencies stood far above its medians (BENCHMARKS.md).

Here every transaction that Django opens (`atomic()`, which this project's
settings begin IMMEDIATE, so that it takes SQLite's write lock at once) first
takes an exclusive `flock` on `<database>-writelock`, polled every
0.1 to 1 ms, and releases it at COMMIT or ROLLBACK. The writers of all
processes then take SQLite's lock in turn, each within a millisecond of its
release. SQLite's own lock and busy timeout stay in force underneath, for
writers that do not go through this backend: the sqlite3 shell, and
statements run in autocommit, outside `atomic()` (Django's `update_last_login`,
say). Those still wait in SQLite's busy handler, and under a saturating write
load they may wait long; this project's own writes run in `atomic()`. Reads
outside a transaction take neither lock (WAL mode). Django has no hook for
SQLite's busy handler itself, nor for a transaction's start; this backend uses
only public seams: sqlite3.connect()'s `factory` (a connection whose COMMIT and
ROLLBACK release the lock) and Django's `create_cursor()` (a cursor whose BEGIN
takes it). What it is worth: docs/database.md ("The SQLite write lock").

The lock file gets the database file's permission bits, as SQLite's `-wal`
and `-shm` files do, so that every user who may write the database may take
it. A connection must not be carried across a fork (true of any database
connection); locks made after a fork start free.
"""

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from django.db import OperationalError
from django.db.backends.sqlite3 import base

logger = logging.getLogger(__name__)


class WriteLock:
    """An exclusive, non-reentrant lock on a database file, for every thread and process.

    The threads of one process queue on a threading.Lock (woken by the kernel
    at its release, no polling); the one holding it then takes an exclusive
    flock on the lock file, which the other processes' holders also want,
    polling every 0.1 to 1 ms.
    """

    _process_locks: ClassVar[dict[str, threading.Lock]] = {}
    _registry_lock = threading.Lock()

    def __init__(self, path: str, mode: int = 0o644) -> None:
        self.path = path
        self.mode = mode
        with self._registry_lock:
            self._thread_lock = self._process_locks.setdefault(path, threading.Lock())
        self._fd: int | None = None
        self.held = False

    def acquire(self, timeout: float) -> None:
        """Take the lock; OperationalError ("database is locked") after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        if not self._thread_lock.acquire(timeout=timeout):
            raise OperationalError("database is locked")
        try:
            self._lock_file(deadline)
        except BaseException:
            self._thread_lock.release()
            raise
        self.held = True

    def _lock_file(self, deadline: float) -> None:
        if self._fd is None:
            self._fd = _open_lock_file(self.path, self.mode)
        fd = self._fd
        pause = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OperationalError("database is locked") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)

    def release(self) -> None:
        """Release the lock if held (idempotent)."""
        if self.held:
            self.held = False
            assert self._fd is not None  # held: the lock file is open
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._thread_lock.release()

    def close(self) -> None:
        """Release the lock and close the lock file."""
        self.release()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _open_lock_file(path: str, mode: int) -> int:
    """Open the lock file, creating it with `mode` (whatever the umask) if missing.

    Read-only is enough for flock, so a lock file created by another user who
    may write the database can be opened by any user who may read it.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return os.open(path, flags)
    os.fchmod(fd, mode)
    return fd


def _file_mode(path: str) -> int:
    """The database file's read and write permission bits (sqlite3 has created it)."""
    try:
        return os.stat(path).st_mode & 0o666
    except OSError:
        return 0o644


def _forget_locks_after_fork() -> None:
    """Locks made in a forked child start free (a parent's thread may hold one)."""
    WriteLock._process_locks = {}
    WriteLock._registry_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_locks_after_fork)


class QueuedWritersConnection(sqlite3.Connection):
    """sqlite3's connection, whose write transactions take a WriteLock first.

    Built by sqlite3.connect(factory=...) (`DatabaseWrapper.get_connection_params`);
    `BEGIN` takes the lock (`QueuedCursor`), COMMIT and ROLLBACK release it. Only
    sqlite3's and Django's public API: no private method of Django's is overridden.
    """

    write_lock: WriteLock | None = None
    lock_timeout: float = 5.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._before_unlock: list[Callable[[], None]] = []

    def before_unlock(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the open transaction has committed, before its write lock
        is released; never if it rolls back (a ROLLBACK TO SAVEPOINT keeps it).

        For a commit's announcement (broadcast/doorbell.py): its system call, made
        after the release, hands the lock to another thread of this process ahead
        of the other processes' writers (docs/database.md, "Announcing a commit").
        A callback's error is logged, never raised: the transaction has committed.
        """
        self._before_unlock.append(callback)

    def take_write_lock(self) -> None:
        if self.write_lock is not None:
            self.write_lock.acquire(timeout=self.lock_timeout)

    def release_write_lock(self) -> None:
        if self.write_lock is not None:
            self.write_lock.release()

    def commit(self) -> None:
        callbacks, self._before_unlock = self._before_unlock, []
        try:
            super().commit()
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    logger.exception("Error calling %r after a commit", callback)
        finally:
            self.release_write_lock()

    def rollback(self) -> None:
        self._before_unlock = []
        try:
            super().rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.write_lock is not None:
                self.write_lock.close()
                self.write_lock = None


class QueuedCursor(base.SQLiteCursorWrapper):
    """Django's SQLite cursor, whose BEGIN (Django's `atomic()`, IMMEDIATE in this
    project's settings) waits for the connection's write lock."""

    connection: QueuedWritersConnection

    def execute(self, query, params=None):
        if not query.startswith("BEGIN"):
            return super().execute(query, params)
        self.connection.take_write_lock()
        try:
            return super().execute(query, params)
        except BaseException:
            self.connection.release_write_lock()
            raise


class DatabaseWrapper(base.DatabaseWrapper):
    """SQLite whose transactions queue on a WriteLock before BEGIN (file databases only)."""

    def get_connection_params(self) -> dict:
        return {**super().get_connection_params(), "factory": QueuedWritersConnection}

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            name = str(self.settings_dict["NAME"])
            connection.write_lock = WriteLock(f"{name}-writelock", _file_mode(name))
            connection.lock_timeout = self.settings_dict["OPTIONS"].get("timeout", 5)
        return connection

    def create_cursor(self, name=None):
        return self.connection.cursor(factory=QueuedCursor)
