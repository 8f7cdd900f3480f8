"""How the dispatcher's database session is set up, unlike the web's.

Each thread that runs the dispatcher's rounds (broadcast/dbcalls.py) calls
`set_up()` before each: once per new connection, it sets the session up for
the dispatcher's work, whatever the settings:

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
"""

import contextlib
from collections.abc import Iterator

from django.db import connection

_GENERIC_PLANS = "SET plan_cache_mode = force_generic_plan"
# What a dispatcher's session runs when its connection is new. On PostgreSQL
# session settings, as Django's own time zone is.
_DISPATCHER_SETUP = {
    "sqlite": ["PRAGMA synchronous=NORMAL"],
    "postgresql": ["SET synchronous_commit = off", _GENERIC_PLANS],
}


class Session:
    """The calling thread's connection as a dispatcher's: `set_up()` before each call.

    One per thread that runs the dispatcher's calls (Django's connections are
    per thread); it remembers which DB-API connection it set up last, so that a
    new one (after a restart, CONN_MAX_AGE, a broken connection) is set up too.
    """

    def __init__(self) -> None:
        self._set_up = None  # the DB-API connection set up last

    def set_up(self) -> None:
        connection.ensure_connection()
        if connection.connection is self._set_up:
            return
        with connection.cursor() as cursor:
            for statement in _DISPATCHER_SETUP.get(connection.vendor, []):
                cursor.execute(statement)
        self._set_up = connection.connection


@contextlib.contextmanager
def custom_plans() -> Iterator[None]:
    """On a dispatcher's PostgreSQL session, plan the statements run within it as
    PostgreSQL would by default (for their values); for the dispatcher's calls only."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = auto")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(_GENERIC_PLANS)
