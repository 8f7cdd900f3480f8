"""Where the dispatcher's database work runs: on its database thread, or on the loop's.

Django's ORM is synchronous and its connections are per thread. While events
wait in the local queue, a round runs on the database thread, so that the loop
goes on sending them meanwhile (a backlog's rounds of 500 events). With nothing
queued (a trickle's round) the loop has nothing to send until the round ends,
and answers can wait to be collected, so it runs the round itself, on a
connection of its own: a hand-off costs the database thread a sleep and a
wake-up per round, which on these virtual machines is a large share of a small
round's CPU (bench/ANALYSIS.md). Rounds never overlap, so the two connections
never write at once.
"""

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import close_old_connections, connection

from broadcast import sessions, store

T = TypeVar("T")

# How often a thread's connection is checked before its next call (seconds).
CHECK_INTERVAL = 1.0


class _ConnectionCheck:
    """What Django does around each request: drop a connection that broke or outlived
    CONN_MAX_AGE. Once a second, not every round: with CONN_HEALTH_CHECKS each one costs
    a `SELECT 1` on PostgreSQL, and a connection that breaks in between fails one
    round, which is retried."""

    def __init__(self) -> None:
        self._next = 0.0  # time.monotonic() of the next check

    def __call__(self) -> None:
        now = time.monotonic()
        if now >= self._next:
            close_old_connections()
            self._next = now + CHECK_INTERVAL

    def soon(self) -> None:
        """Check before the next call (a call failed: its connection may be broken)."""
        self._next = 0.0


class DatabaseCalls:
    """The dispatcher's database thread, and calls run on the caller's thread.

    `submit()` runs a call on the database thread and returns its future;
    `here()` runs it at once on the calling thread (the loop's) and returns a
    future already done. `close()` closes both connections: the database
    thread's, and the caller's if `here()` opened it.
    """

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="broadcast-db",
            initializer=sessions.on_database_thread,
        )
        self._thread_check = _ConnectionCheck()
        self._here_check = _ConnectionCheck()
        self._opened_here = False

    def submit(self, function: Callable[..., T], /, **kwargs: Any) -> Future[T]:
        """Run `function(**kwargs)` on the database thread."""

        def call() -> T:
            self._thread_check()
            return function(**kwargs)

        return self._thread.submit(call)

    def here(self, function: Callable[..., T], /, **kwargs: Any) -> Future[T]:
        """Run `function(**kwargs)` now, on the calling thread; its outcome as a done future."""
        future: Future[T] = Future()
        self._here_check()
        self._opened_here |= connection.connection is None
        try:
            with sessions.dispatcher_connection():
                future.set_result(function(**kwargs))
        except Exception as exc:  # as the database thread's future would hold it
            future.set_exception(exc)
        return future

    def check_soon(self) -> None:
        """Check both connections before their next call (a round failed)."""
        self._thread_check.soon()
        self._here_check.soon()

    def close(self) -> None:
        """Close the connections (from the thread that called `here()`) and the thread."""
        try:
            self.submit(store.close).result()
        finally:
            self._thread.shutdown(wait=True)
            if self._opened_here:
                store.close()
