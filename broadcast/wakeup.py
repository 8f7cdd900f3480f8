"""Wake the dispatcher when new events commit.

On PostgreSQL, event_enqueue() sends NOTIFY inside the writing transaction, so
a LISTENing dispatcher hears of an event the moment it commits (and never of a
rolled-back one). A thread of its own holds the LISTEN connection and calls
`wake()`: at once for the first notification after a quiet spell, then at most
once per COALESCE_SECONDS, however many commits notify in between. Under a
steady load the dispatcher stops listening for a while (`set_listening`) and
polls, since every commit's NOTIFY would still wake the listening backend. On SQLite
there is no such channel; the dispatcher polls its index of due events instead.
Whatever wakes the dispatcher (a NOTIFY, a round ended on its database thread,
a stop) makes its loop's select() return through a `Waker`.
"""

import contextlib
import logging
import select
import socket
import threading

from django.db import connections

from broadcast.services import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)


# Under load every commit notifies: after a wake-up, the next comes no sooner
# than this, so that one round claims what many commits made (SQLite's poll
# gives it the same pace). A quiet dispatcher is woken at once.
COALESCE_SECONDS = 0.02
# How often the listening thread looks up from its socket to see whether to stop.
STOP_CHECK_SECONDS = 0.2


class Waker:
    """A self-pipe: another thread makes the loop's select() return (a round done, a NOTIFY).

    Every wake() writes a byte (wake-ups come per round or per burst of NOTIFYs,
    not per event) and clear() drains them before the loop looks at what they
    announce, so none is lost between the two.
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        return self._reader.fileno()

    def wake(self) -> None:
        # Full: wake-ups are pending anyway. Closed: the dispatcher has finished
        # (a late signal).
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


class PostgresListener:
    """Calls `wake()` after NOTIFYs (bursts coalesced), reconnecting if the connection drops.

    A context manager: the listening thread runs between enter and exit.
    `listening` is set while LISTEN is in place (tests wait for it);
    `set_listening(False)` takes it away and `set_listening(True)` back.
    """

    def __init__(self, wake, using: str = "default") -> None:
        self._wake = wake
        self._using = using
        self._stop = threading.Event()
        self.listening = threading.Event()
        self._wanted = True  # LISTEN wanted: the dispatcher's choice (set_listening)
        self._changed = Waker()  # ends the listening thread's wait for a change or a stop
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PostgresListener":
        conninfo = self._conninfo()  # read the settings here, not in the thread
        self._thread = threading.Thread(
            target=self._run, args=(conninfo,), name="broadcast-listen", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._changed.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._changed.close()

    def set_listening(self, wanted: bool) -> None:
        """Listen (True) or not (False) from now on; from any thread. Back to
        listening, it wakes the dispatcher once, for what committed meanwhile."""
        if wanted != self._wanted:
            self._wanted = wanted
            self._changed.wake()

    def _conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        params = connections[self._using].get_connection_params()
        keep = ("dbname", "user", "password", "host", "port", "sslmode")
        return make_conninfo(**{k: v for k, v in params.items() if k in keep and v})

    def _run(self, conninfo: str) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as connection:
                    self._apply(connection)
                    self._listen(connection)
            except psycopg.Error as exc:
                self.listening.clear()
                logger.warning("LISTEN connection lost (%s); polling until it is back", exc)
                self._stop.wait(1)

    def _listen(self, connection) -> None:
        # libpq's own calls (psycopg.pq) rather than Connection.notifies(): the
        # notifications carry nothing but their arrival, and under load they come
        # one per commit, each of which notifies() would turn into Python objects.
        pgconn, fd = connection.pgconn, connection.fileno()
        while not self._stop.is_set():
            readable = select.select([fd, self._changed], [], [], STOP_CHECK_SECONDS)[0]
            if self._changed in readable:
                self._changed.clear()
                self._apply(connection)
            if fd not in readable:
                continue
            pgconn.consume_input()  # raises psycopg.OperationalError if the connection is lost
            notified = False
            while pgconn.notifies() is not None:
                notified = True
            if notified and self.listening.is_set():  # not the last ones before UNLISTEN
                self._wake()
                self._stop.wait(COALESCE_SECONDS)

    def _apply(self, connection) -> None:
        """LISTEN or UNLISTEN, as the dispatcher last asked."""
        if self._wanted and not self.listening.is_set():
            connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.listening.set()
            self._wake()  # catch up on anything committed while not listening
        elif not self._wanted and self.listening.is_set():
            connection.execute(f"UNLISTEN {NOTIFY_CHANNEL}")
            self.listening.clear()


class NoListener:
    """SQLite: nothing to listen to; the dispatcher's poll interval does the work."""

    def __init__(self, wake, using: str = "default") -> None:
        self.listening = threading.Event()

    def __enter__(self) -> "NoListener":
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def set_listening(self, wanted: bool) -> None:
        """Nothing to listen to."""


def listener_for(using: str = "default"):
    """The wake-up source for this database: LISTEN on PostgreSQL, none elsewhere."""
    return PostgresListener if connections[using].vendor == "postgresql" else NoListener
