"""What wakes the dispatcher's loop, and what announces new events to it.

- `Waker`: a self-pipe that ends the loop's wait from another thread (a round
  ended on the database thread, an announcement below, a stop).
- An announcement source, one per database, each a thread of its own that
  calls `wake()` when events are committed, at once for the first after a quiet
  spell, then at most once per COALESCE_SECONDS however many commits come:
  - `PostgresListener`: LISTEN for the NOTIFY that the outbox's trigger sends
    in the inserting transaction (migration 0004), so at its commit;
  - `DoorbellWatch`: SQLite's doorbell (broadcast/doorbell.py), touched by
    the writer after its commit, watched with inotify;
  - `NoAnnouncer`: nothing announces (an in-memory database); the loop polls.
  Each can be switched off and on (`set_listening`) by the pacer: under a
  steady load polling costs less than an announcement per commit. Switched
  back on, it wakes the loop once, for what committed meanwhile. `listening`
  is set while announcements are really coming (tests wait for it).
Whatever no announcement covers (another dispatcher's expired lease, a lost
announcement) the pacer's slow poll finds (broadcast/dispatch/pacing.py).
"""

import contextlib
import logging
import os
import select
import socket
import threading

from django.db import connections

from broadcast.doorbell import doorbell_path, ring
from broadcast.services import NOTIFY_CHANNEL

logger = logging.getLogger("broadcast")

# Under load every commit announces itself: after a wake-up, the next comes no
# sooner than this, so that one round claims what many commits made.
COALESCE_SECONDS = 0.02


class Waker:
    """A self-pipe: another thread makes the loop's select() return.

    Every wake() writes a byte (wake-ups come per round or per burst of
    announcements, not per event) and clear() drains them before the loop
    looks at what they announce, so none is lost between the two.
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        return self._reader.fileno()

    def wake(self) -> None:
        # Full: wake-ups are pending anyway. Closed: the dispatcher has finished.
        with contextlib.suppress(OSError):
            self._writer.send(b"\0")

    def clear(self) -> None:
        """Consume the wake-ups; callers look at what they announce afterwards."""
        with contextlib.suppress(BlockingIOError):
            while self._reader.recv(4096):
                pass

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class Announcer:
    """A thread that calls `wake()` when events are announced, while listening is wanted.

    The thread sleeps in select() on the source's descriptor and on a pipe that
    a stop or a change of `set_listening` writes to: nothing runs while nothing
    happens. Subclasses say what the descriptor is and what to do when it is
    readable. Use as a context manager: the thread runs between enter and exit.
    """

    def __init__(self, wake, using: str = "default") -> None:
        self._wake = wake
        self._using = using
        self._stop = threading.Event()
        self.listening = threading.Event()
        self._wanted = True  # the pacer's choice (set_listening)
        self._thread: threading.Thread | None = None
        self._changed_r, self._changed_w = os.pipe()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, name="broadcast-wake", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._interrupt()
        if self._thread is not None:
            self._thread.join(timeout=10)
        os.close(self._changed_r)
        os.close(self._changed_w)

    def set_listening(self, wanted: bool) -> None:
        """Listen (True) or not (False) from now on; from any thread."""
        if wanted != self._wanted:
            self._wanted = wanted
            self._interrupt()

    def _interrupt(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._changed_w, b"\0")

    def _wait(self, fd: int) -> bool:
        """Sleep until `fd` is readable (True) or a stop or a change comes (False).

        `fd` is watched only while listening: under a steady load, when the pacer
        polls instead, every commit would otherwise still wake this thread (on
        SQLite; UNLISTEN keeps PostgreSQL's from coming at all). What came meanwhile
        waits in `fd` and the catch-up wake-up of listening again covers it.
        """
        watched = [fd, self._changed_r] if self.listening.is_set() else [self._changed_r]
        readable = select.select(watched, [], [])[0]
        if self._changed_r in readable:
            os.read(self._changed_r, 4096)
        return fd in readable

    def _announced(self) -> None:
        """Wake the loop for an announcement, then let the next ones gather a while."""
        if self.listening.is_set():
            self._wake()
            self._stop.wait(COALESCE_SECONDS)

    def _run(self) -> None:
        raise NotImplementedError


class PostgresListener(Announcer):
    """LISTEN on its own connection (psycopg's `notifies()`), reconnecting if it drops."""

    def __enter__(self):
        self._conninfo = self._make_conninfo()  # read the settings here, not in the thread
        return super().__enter__()

    def _make_conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        params = connections[self._using].get_connection_params()
        keep = ("dbname", "user", "password", "host", "port", "sslmode")
        return make_conninfo(**{k: v for k, v in params.items() if k in keep and v})

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    self._listen(connection)
            except psycopg.Error as exc:
                self.listening.clear()
                logger.warning("LISTEN connection lost (%s); polling until it is back", exc)
                self._stop.wait(1)

    def _listen(self, connection) -> None:
        while not self._stop.is_set():
            self._apply(connection)
            # notifies(timeout=0) reads what has come without waiting: its own wait
            # would wake every 0.1 s to look for a Ctrl-C (psycopg's interval), all day.
            # A lost connection raises here.
            if self._wait(connection.fileno()) and any(
                True for _ in connection.notifies(timeout=0)
            ):
                self._announced()

    def _apply(self, connection) -> None:
        """LISTEN or UNLISTEN, as the pacer last asked."""
        if self._wanted and not self.listening.is_set():
            connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.listening.set()
            self._wake()  # catch up on anything committed while not listening
        elif not self._wanted and self.listening.is_set():
            connection.execute(f"UNLISTEN {NOTIFY_CHANNEL}")
            self.listening.clear()


class DoorbellWatch(Announcer):
    """SQLite: inotify on the database's doorbell, which writers touch after they commit."""

    def __init__(self, wake, using: str = "default") -> None:
        super().__init__(wake, using)
        self._path = doorbell_path(using)

    def _run(self) -> None:
        from inotify_simple import INotify, flags

        assert self._path is not None  # announcer_for() checked
        ring(self._path)  # it exists from now on (a ring then only touches it)
        with INotify() as watch:
            watch.add_watch(self._path, flags.ATTRIB | flags.CLOSE_WRITE | flags.MODIFY)
            while not self._stop.is_set():
                self._apply()
                if self._wait(watch.fileno()):
                    watch.read(timeout=0)
                    self._announced()

    def _apply(self) -> None:
        if self._wanted and not self.listening.is_set():
            self.listening.set()
            self._wake()  # catch up on anything committed while not listening
        elif not self._wanted:
            self.listening.clear()


class NoAnnouncer:
    """Nothing announces new events: the loop polls at its poll interval."""

    def __init__(self, wake, using: str = "default") -> None:
        self.listening = threading.Event()

    def __enter__(self) -> "NoAnnouncer":
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def set_listening(self, wanted: bool) -> None:
        """Nothing to listen to."""


def announcer_for(using: str = "default"):
    """What announces new events on this database: LISTEN, the doorbell, or nothing."""
    if connections[using].vendor == "postgresql":
        return PostgresListener
    if doorbell_path(using) is not None:
        return DoorbellWatch
    return NoAnnouncer
