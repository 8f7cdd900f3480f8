"""Where the dispatcher's database work runs: on its database thread, or on the loop's.

Django's ORM is synchronous and its connections are per thread. While events
wait in the local queue, a round runs on the database thread (`submit`), so
that the loop goes on sending them meanwhile (a backlog's rounds of 500
events). With nothing queued (a trickle's round, every round under a steady
load) the loop has nothing to send until the round ends, and answers can wait
to be collected, so it runs the round itself (`here`), on a connection of its
own: a hand-off costs both threads a sleep and a wake-up per round, which on
these virtual machines is a large share of a small round's CPU (the figure:
docs/broadcast.md, "Where a round runs"). Rounds never overlap, so the two
connections never write at once. Each is set up as a dispatcher's
(broadcast/sessions.py).
"""

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import close_old_connections, connection

from broadcast.sessions import Session

T = TypeVar("T")

# How often a thread's connection is checked before its next call (seconds).
CHECK_INTERVAL = 1.0


def _close_connection() -> None:
    """Close the calling thread's connection (`connection` is per thread: looked up here)."""
    connection.close()


class _ConnectionCheck:
    """Before a call on one thread: what Django does around each request, and the session.

    At most once a second, as Django does around each request, a connection that
    broke or outlived CONN_MAX_AGE is dropped (with CONN_HEALTH_CHECKS each check
    costs a `SELECT 1` on PostgreSQL; a connection that breaks in between fails
    one round, which is retried); a new one is set up as a dispatcher's.
    """

    def __init__(self) -> None:
        self._session = Session()
        self._next = 0.0  # time.monotonic() of the next check

    def __call__(self) -> None:
        now = time.monotonic()
        if now >= self._next:
            close_old_connections()
            self._next = now + CHECK_INTERVAL
        self._session.set_up()

    def soon(self) -> None:
        """Check before the next call (a call failed: its connection may be broken)."""
        self._next = 0.0


class DatabaseCalls:
    """The dispatcher's database thread, and calls run on the caller's thread.

    `submit()` runs a call on the database thread and returns its future;
    `here()` runs it at once on the calling thread (the loop's) and returns a
    future already done. `close()`, from the thread that called `here()`,
    closes both connections and ends the thread.
    """

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broadcast-db")
        self._on_thread = _ConnectionCheck()
        self._here = _ConnectionCheck()
        self._used_here = False

    def submit(self, function: Callable[..., T], /, **kwargs: Any) -> Future[T]:
        """Run `function(**kwargs)` on the database thread."""

        def call() -> T:
            self._on_thread()
            return function(**kwargs)

        return self._thread.submit(call)

    def here(self, function: Callable[..., T], /, **kwargs: Any) -> Future[T]:
        """Run `function(**kwargs)` now, on the calling thread; its outcome as a done future."""
        future: Future[T] = Future()
        self._used_here = True
        try:
            self._here()
            future.set_result(function(**kwargs))
        except Exception as exc:  # as the database thread's future would hold it
            future.set_exception(exc)
        return future

    def check_soon(self) -> None:
        """Check both connections before their next call (a call failed)."""
        self._on_thread.soon()
        self._here.soon()

    def close(self) -> None:
        """Close the database thread's connection and the thread, and the connection that
        `here()` used (call it from that thread)."""
        try:
            self.submit(_close_connection).result()
        finally:
            self._thread.shutdown(wait=True)
            if self._used_here:
                _close_connection()
