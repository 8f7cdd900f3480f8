"""The dispatcher's database thread: every call of the dispatcher's to its database.

Django's ORM is synchronous and its connections are per thread. The rounds
(and the release at exit) run on one thread of their own, so that the loop
goes on sending and collecting answers meanwhile (a backlog's rounds of 500
events), on one connection, set up as a dispatcher's (broadcast/sessions.py).
"""

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import close_old_connections, connection

from broadcast.sessions import Session

T = TypeVar("T")

# How often the connection is checked before a call (seconds).
CHECK_INTERVAL = 1.0


def _close_connection() -> None:
    """Close the calling thread's connection (`connection` is per thread: looked up here)."""
    connection.close()


class DatabaseCalls:
    """The dispatcher's database thread: `submit()` runs a call there and returns its future.

    Before a call, the connection is checked at most once a second, as Django
    does around each request (a connection that broke or outlived CONN_MAX_AGE
    is dropped; with CONN_HEALTH_CHECKS each check costs a `SELECT 1` on
    PostgreSQL, and a connection that breaks in between fails one round, which
    is retried), and a new one is set up as a dispatcher's.
    """

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broadcast-db")
        self._session = Session()
        self._next_check = 0.0  # time.monotonic() of the next check

    def submit(self, function: Callable[..., T], /, **kwargs: Any) -> Future[T]:
        """Run `function(**kwargs)` on the database thread."""

        def call() -> T:
            self._check()
            return function(**kwargs)

        return self._thread.submit(call)

    def _check(self) -> None:
        now = time.monotonic()
        if now >= self._next_check:
            close_old_connections()
            self._next_check = now + CHECK_INTERVAL
        self._session.set_up()

    def check_soon(self) -> None:
        """Check the connection before the next call (a call failed: it may be broken)."""
        self._next_check = 0.0

    def close(self) -> None:
        """Close the connection and end the thread."""
        try:
            self.submit(_close_connection).result()
        finally:
            self._thread.shutdown(wait=True)
