"""broadcast/dbcalls.py: the dispatcher's calls on its database thread or on the caller's."""

import threading

import pytest
from django.db import connection

from broadcast.dbcalls import DatabaseCalls

# Each call checks its thread's connection first, as Django does around a request.
pytestmark = pytest.mark.django_db(transaction=True)


def test_a_call_submitted_runs_on_the_database_thread_one_here_on_the_callers():
    calls = DatabaseCalls()
    try:
        there = calls.submit(threading.current_thread).result()
        here = calls.here(threading.current_thread)
        assert here.done()
        assert here.result() is threading.current_thread()
        assert there is not threading.current_thread()
        assert there.name.startswith("broadcast-db")
    finally:
        calls.close()


def test_an_exception_here_is_held_by_the_future_as_on_the_database_thread():
    def fail() -> None:
        raise ValueError("no")

    calls = DatabaseCalls()
    try:
        for future in (calls.here(fail), calls.submit(fail)):
            with pytest.raises(ValueError, match="no"):
                future.result()
    finally:
        calls.close()


def test_close_closes_the_connection_opened_here_and_only_that():
    def query() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0]

    query()  # this thread's connection, open before: not the dispatcher's to close
    calls = DatabaseCalls()
    assert calls.here(query).result() == 1
    calls.close()
    assert connection.connection is not None

    opened: list = []

    def in_a_thread_of_its_own() -> None:
        calls = DatabaseCalls()
        calls.here(query).result()
        calls.close()
        opened.append(connection.connection)

    thread = threading.Thread(target=in_a_thread_of_its_own)
    thread.start()
    thread.join(10)
    assert opened == [None]
