"""How the dispatcher's own database connections are set up, unlike the web's.

A dispatcher's connections (its database thread's, and the loop's for the
rounds it runs itself) are marked before they open (`on_database_thread`,
`dispatcher_connection`); when Django opens one, it is set up for the
dispatcher's work, whatever the settings:

- **It commits without waiting for a sync to disk**: `synchronous=NORMAL` on
  SQLite (whatever SQLITE_SYNCHRONOUS says), `synchronous_commit = off` on
  PostgreSQL. Everything a dispatcher writes is redone if a power cut or a
  database crash undoes it (a lease or a delivery lost means the event is sent
  again, and the receiver dedupes it by key; a retry's schedule, a failure or
  a pause is met again at the next attempt). The outbox rows themselves are
  written by the web side, which keeps its sync; and since the log is written
  in order, a later synced commit makes the dispatcher's earlier ones durable
  too. What it saves, a sync and the wait for it at each of a trickle's
  rounds: bench/ANALYSIS.md.
- **On PostgreSQL it plans its prepared statements once**
  (`plan_cache_mode = force_generic_plan`). The round's statement runs
  fifty times a second under a steady load, prepared (railfleet/database.py),
  and its plan is the same whatever its values: index scans by status and
  time, then by primary key. But a custom plan, costed with the few events due
  a trickle brings, always looked cheaper than the generic one, so PostgreSQL
  planned the round afresh every time (bench/ANALYSIS.md). Retention's
  query is the one whose plan does depend on its values (its cutoff selects
  none of the rows or all of them): it runs within `custom_plans()`.

On PostgreSQL the round's statement also runs on a cursor kept from one round
to the next (`kept_cursor`): `connection.cursor()` sets up a psycopg cursor
and tears it down again, which after the loop's sleep was a large share of a
trickle's round (bench/ANALYSIS.md). On SQLite a cursor costs next to nothing.
"""

import contextlib
import threading
from collections.abc import Iterator

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.signals import connection_created
from django.db.backends.utils import CursorWrapper
from django.dispatch import receiver

_database_thread = threading.local()
_kept = threading.local()  # this thread's kept DB-API cursor, and the connection it is on

_GENERIC_PLANS = "SET plan_cache_mode = force_generic_plan"
# What a dispatcher's connection runs when it opens. On PostgreSQL session
# settings, as Django's own time zone is.
_DISPATCHER_SETUP = {
    "sqlite": ["PRAGMA synchronous=NORMAL"],
    "postgresql": ["SET synchronous_commit = off", _GENERIC_PLANS],
}


def on_database_thread() -> None:
    """Mark the calling thread as a dispatcher's database thread (its executor's initializer):
    the connections it opens are set up as a dispatcher's."""
    _database_thread.dispatcher = True


@contextlib.contextmanager
def dispatcher_connection() -> Iterator[None]:
    """Within it, this thread's new connection is set up as a database thread's
    (`on_database_thread`): for rounds the dispatcher's loop runs itself."""
    before = getattr(_database_thread, "dispatcher", False)
    _database_thread.dispatcher = True
    try:
        yield
    finally:
        _database_thread.dispatcher = before


@contextlib.contextmanager
def custom_plans() -> Iterator[None]:
    """On a dispatcher's PostgreSQL connection, plan the statements run within it as
    PostgreSQL would by default (for their values); elsewhere, nothing changes."""
    forced = connection.vendor == "postgresql" and getattr(_database_thread, "dispatcher", False)
    if not forced:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = auto")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(_GENERIC_PLANS)


def kept_cursor() -> CursorWrapper:
    """A cursor of this thread's connection whose DB-API cursor is kept from one call to
    the next (a new one once the connection is new, or if it was closed).

    It is wrapped as `connection.cursor()` wraps a new one, at each call, so
    query logging, execute wrappers and error translation behave the same. What
    is saved is the DB-API cursor's set-up and tear-down: psycopg's adapters,
    and its transformer, which it keeps while the same query object runs again
    (the round's SQL is built once). It keeps the time zone its connection had
    when it was made, as the connection's own loaders do.
    """
    # As BaseDatabaseWrapper._cursor() and _prepare_cursor() do (Django 5.2; check
    # again on upgrade), but for create_cursor(). `connection` looks this thread's
    # connection up at every attribute: once here.
    db = connections[DEFAULT_DB_ALIAS]
    db.close_if_health_check_failed()
    db.ensure_connection()
    if getattr(_kept, "connection", None) is not db.connection or _closed(_kept.cursor):
        with db.wrap_database_errors:
            _kept.cursor = db.create_cursor()
        _kept.connection = db.connection
    db.validate_thread_sharing()
    if db.queries_logged:
        return db.make_debug_cursor(_kept.cursor)
    return db.make_cursor(_kept.cursor)


def _closed(cursor) -> bool:
    """Whether a DB-API cursor was closed: psycopg's say, sqlite3's do not (nor are
    they kept: the round on SQLite makes its own)."""
    return getattr(cursor, "closed", False)


@receiver(connection_created)
def _set_up_dispatcher_connection(sender, connection, **kwargs) -> None:
    if not getattr(_database_thread, "dispatcher", False):
        return
    with connection.cursor() as cursor:
        for statement in _DISPATCHER_SETUP.get(connection.vendor, []):
            cursor.execute(statement)
