"""A database outage answered as one: 503 with Retry-After, one log line, recovery by itself.

While the database cannot be reached (a PostgreSQL restart or failover, a
SQLite file that cannot be opened), a request that needs it fails with a
connection-level error. `DatabaseOutageMiddleware` answers such a request 503
with `Retry-After`: JSON `{"detail": ...}` under /api/, Django's plain error
page elsewhere. It logs one line when the outage starts and one when a request
gets through to the database again (per process: each web worker sees the
outage itself), never a traceback per request, and it closes the broken
connection so that the next request connects afresh. A failure raised after
the view (a session saved at the response) never reaches the middleware's
`process_exception`: Django turns it into its 500 at the layer that raised it,
so `server_error`, the project's handler500, answers it with the same 503.

Only connection-level failures count (`is_connection_failure`). Django's
OperationalError also carries real faults that a retry does not cure or that
are no outage (SQLite's "no such table", a PostgreSQL deadlock, a statement
timeout): those stay the 500 they are, with their traceback. Written here
because no library draws this line for both drivers.
"""

import logging
import sqlite3
import sys
import threading

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError, connections
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.defaults import ERROR_PAGE_TEMPLATE

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
DETAIL = "The database is unavailable; retry later."

# PostgreSQL SQLSTATEs of a server that is gone or not accepting connections:
# class 08 (connection exception), admin shutdown (pg_terminate_backend, a
# restart), crash shutdown, starting up or shutting down, too many connections.
_PG_UNAVAILABLE = {"57P01", "57P02", "57P03", "53300"}
# SQLite primary result codes of a file that cannot be reached.
_SQLITE_UNAVAILABLE = {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR}


def is_connection_failure(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached, rather than a fault of the query."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    driver = exc.__cause__
    if isinstance(driver, sqlite3.Error):
        code = getattr(driver, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_UNAVAILABLE
    sqlstate = getattr(driver, "sqlstate", "")
    if sqlstate is None:
        # psycopg: no SQLSTATE means the client side failed (refused, reset,
        # closed); an InterfaceError counts only if it left the connection closed.
        return isinstance(exc, OperationalError) or _driver_connection_lost()
    return bool(sqlstate) and (sqlstate.startswith("08") or sqlstate in _PG_UNAVAILABLE)


def _driver_connection_lost() -> bool:
    """Whether one of this thread's open driver connections reports itself closed or broken."""
    return any(
        getattr(c.connection, "closed", False) or getattr(c.connection, "broken", False)
        for c in connections.all(initialized_only=True)
        if c.connection is not None
    )


class _OutageLog:
    """Logs an outage once when it starts and once when it ends (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down = False

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.down:
                return
            self.down = True
        # The class and SQLSTATE only: the driver's message may name hosts or users.
        code = getattr(exc.__cause__, "sqlstate", None) or getattr(
            exc.__cause__, "sqlite_errorname", None
        )
        logger.error(
            "Database unavailable (%s%s): answering 503 until it is back",
            type(exc.__cause__ or exc).__name__,
            f" {code}" if code else "",
        )

    def succeeded(self) -> None:
        with self._lock:
            if not self.down:
                return
            self.down = False
        logger.warning("Database available again")


outage_log = _OutageLog()


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503 answer: JSON under /api/, Django's plain error page elsewhere."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": DETAIL}, status=503)
    else:
        page = ERROR_PAGE_TEMPLATE % {"title": "Service Unavailable", "details": DETAIL}
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def mark_logged(request: HttpRequest) -> None:
    """Leave `request`'s error answer out of Django's request log: it was logged here
    (an outage once, however many requests meet it). Read by `AnswerLoggedFilter`."""
    request.railfleet_answer_logged = True  # type: ignore[attr-defined]


class AnswerLoggedFilter(logging.Filter):
    """On the "django.request" logger (settings.LOGGING): drops the line Django logs for
    an answer already logged here (`mark_logged`). A logging filter, Django's public
    seam, rather than its private `response._has_been_logged`."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        return not getattr(request, "railfleet_answer_logged", False)


def note_unavailable(request: HttpRequest, exc: BaseException) -> None:
    """`request` failed on an unreachable database: log the outage (once), drop the
    broken connections, and tell the middleware this request is no recovery."""
    request._database_unavailable = True  # type: ignore[attr-defined]
    mark_logged(request)  # Django's request logger would log every 5xx answer
    outage_log.failed(exc)
    close_broken_connections()


def close_broken_connections() -> None:
    """Close every open connection outside a transaction, so the next use reconnects."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


class DatabaseOutageMiddleware:
    """Answers a request that failed on an unreachable database with 503 (module docstring)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        failed = getattr(request, "_database_unavailable", False)
        if outage_log.down and not failed and _reached_database():
            outage_log.succeeded()
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not is_connection_failure(exc):
            return None
        note_unavailable(request, exc)
        return unavailable_response(request)


def _reached_database() -> bool:
    """Whether this request used a connection without error (the outage closed the old ones)."""
    return any(
        c.connection is not None and not c.errors_occurred
        for c in connections.all(initialized_only=True)
    )


@receiver(got_request_exception)
def _note_unavailable_outside_the_view(sender, request=None, **kwargs) -> None:
    """Django is turning an exception into its 500 (`server_error` answers next)."""
    exc = sys.exc_info()[1]
    if request is not None and exc is not None and is_connection_failure(exc):
        note_unavailable(request, exc)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the outage's 503 for a request that failed on an unreachable database
    outside the view, Django's own 500 page for anything else."""
    if getattr(request, "_database_unavailable", False):
        return unavailable_response(request)
    return defaults.server_error(request)
