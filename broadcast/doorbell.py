"""SQLite's doorbell: a writer's commit tells the dispatchers, as NOTIFY does on PostgreSQL.

SQLite has no NOTIFY, and a dispatcher that polled its database every few
milliseconds to find new events would cost CPU all day on a service that may
record a few defects an hour. Instead, a transaction that adds (or makes due)
events touches `<database>-doorbell` once it has committed (`ring_at_commit`,
never for a rolled-back one), and each dispatcher watches that file with
inotify (broadcast/dispatch/wake.py `DoorbellWatch`), which costs nothing while
nobody rings. A ring that is missed (a crash between
commit and touch, a write made by hand) is found by the dispatcher's slow poll.

The file gets the database file's permission bits, as SQLite's `-wal` and
`-shm` files do, so that every user who may write the database may ring.
"""

import contextlib
import os

from django.db import connections, transaction


def doorbell_path(using: str = "default") -> str | None:
    """The doorbell of this database: a file beside it; None for one without a file."""
    connection = connections[using]
    name = str(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or name == ":memory:" or "mode=memory" in name:
        return None
    return f"{name}-doorbell"


def ring_at_commit(using: str = "default") -> None:
    """Ring the doorbell when the caller's transaction commits (at once in autocommit).

    With the railfleet.sqlite backend, before the commit's write lock is released
    (`before_unlock`): rung after it, the ring's system call lets another thread of
    this process take the lock ahead of every other process's writer, the
    dispatchers' included (docs/database.md, "Announcing a commit").
    """
    path = doorbell_path(using)
    if path is None:
        return
    connection = connections[using]
    before_unlock = getattr(connection.connection, "before_unlock", None)
    if connection.in_atomic_block and before_unlock is not None:
        before_unlock(lambda: ring(path))
    else:
        transaction.on_commit(lambda: ring(path), using=using)


def ring(path: str) -> None:
    """Touch the doorbell (its watchers see an attribute change), creating it if missing."""
    try:
        os.utime(path)
    except FileNotFoundError:
        database = path.removesuffix("-doorbell")
        try:
            mode = os.stat(database).st_mode & 0o666
        except OSError:
            mode = 0o644
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            os.fchmod(fd, mode)  # whatever the umask
            os.close(fd)
    except PermissionError:
        pass  # not ours to touch: the dispatchers' slow poll finds the events
