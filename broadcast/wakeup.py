"""Wake the dispatcher when new events commit.

On PostgreSQL, event_enqueue() sends NOTIFY inside the writing transaction, so
a LISTENing dispatcher hears of an event the moment it commits (and never of a
rolled-back one). On SQLite there is no such channel; the dispatcher polls its
index of due events instead.
"""

import asyncio
import logging

from django.db import connections

from broadcast.services import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)


# Under load every commit notifies; waking a few ms after the first of a burst
# lets one claim take the whole burst instead of one claim per commit.
COALESCE_SECONDS = 0.005


class PostgresListener:
    """Calls `wake()` after NOTIFYs (bursts coalesced), reconnecting if the connection drops."""

    def __init__(self, wake, using: str = "default") -> None:
        self._wake = wake
        self._using = using
        self._task: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None

    def _notified(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(COALESCE_SECONDS, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._wake()

    async def __aenter__(self) -> "PostgresListener":
        self._task = asyncio.create_task(self._listen(), name="broadcast-listen")
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        params = connections[self._using].get_connection_params()
        keep = ("dbname", "user", "password", "host", "port", "sslmode")
        return make_conninfo(**{k: v for k, v in params.items() if k in keep and v})

    async def _listen(self) -> None:
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo(), autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._wake()  # catch up on anything committed while not listening
                    async for _ in connection.notifies():
                        self._notified()
            except psycopg.Error as exc:
                logger.warning("LISTEN connection lost (%s); polling until it is back", exc)
                await asyncio.sleep(1)


class NoListener:
    """SQLite: nothing to listen to; the dispatcher's poll interval does the work."""

    def __init__(self, wake, using: str = "default") -> None:
        pass

    async def __aenter__(self) -> "NoListener":
        return self

    async def __aexit__(self, *exc_info) -> None:
        return None


def listener_for(using: str = "default"):
    """The wake-up source for this database: LISTEN on PostgreSQL, none elsewhere."""
    return PostgresListener if connections[using].vendor == "postgresql" else NoListener
