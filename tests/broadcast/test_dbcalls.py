"""broadcast/dbcalls.py: the dispatcher's calls run on its database thread, or on the caller's,
each on a connection of its own."""

import threading

import pytest
from django.db import connection

from broadcast.dbcalls import DatabaseCalls

pytestmark = pytest.mark.django_db(transaction=True)


def _query() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


def test_a_call_runs_on_the_database_thread_and_its_outcome_is_the_futures():
    def fail() -> None:
        raise ValueError("no")

    calls = DatabaseCalls()
    try:
        there = calls.submit(threading.current_thread).result()
        assert there is not threading.current_thread()
        assert there.name.startswith("broadcast-db")
        assert calls.submit(_query).result() == 1
        with pytest.raises(ValueError, match="no"):
            calls.submit(fail).result()
    finally:
        calls.close()


def test_every_call_runs_on_the_same_connection_until_close_closes_it():
    calls = DatabaseCalls()
    try:
        first = calls.submit(lambda: (_query(), connection.connection)[1]).result()
        again = calls.submit(lambda: connection.connection).result()
        assert first is again and first is not None
        assert connection.connection is not first  # this thread's is its own
    finally:
        calls.close()
    assert calls_closed(first)


def test_a_call_here_runs_on_the_callers_thread_on_its_own_connection():
    def fail() -> None:
        raise ValueError("no")

    calls = DatabaseCalls()
    try:
        future = calls.here(threading.current_thread)
        assert future.done() and future.result() is threading.current_thread()
        assert calls.here(_query).result() == 1
        failed = calls.here(fail)
        assert failed.done()
        with pytest.raises(ValueError, match="no"):
            failed.result()
        here = calls.here(lambda: connection.connection).result()
        there = calls.submit(lambda: (_query(), connection.connection)[1]).result()
        assert here is not None and there is not None and here is not there
    finally:
        calls.close()
    assert calls_closed(here) and calls_closed(there)


def calls_closed(raw) -> bool:
    """Whether a DB-API connection was closed (psycopg says so; sqlite3 refuses a cursor)."""
    if hasattr(raw, "closed"):
        return bool(raw.closed)
    try:
        raw.cursor()
    except Exception:  # sqlite3.ProgrammingError: Cannot operate on a closed database
        return True
    return False
