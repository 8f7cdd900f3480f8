"""broadcast/sessions.py: a dispatcher's connections are set up as a dispatcher's, the web's not."""

import threading

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from broadcast import sessions, store
from broadcast.dispatch import rounds
from broadcast.dispatch.policy import DELIVERED
from broadcast.models import Event
from broadcast.services import events_enqueue
from defect.services import defect_create
from tests.broadcast.conftest import deliver_once

pytestmark = pytest.mark.django_db(transaction=True)

# How a connection is set up: each setting's query, a dispatcher's answer, the web's
# (the default): how it commits, and on PostgreSQL how it plans prepared statements.
SESSION_SETTINGS = {
    "sqlite": [("PRAGMA synchronous", 1, 2)],  # NORMAL, FULL
    "postgresql": [
        ("SHOW synchronous_commit", "off", "on"),
        ("SHOW plan_cache_mode", "force_generic_plan", "auto"),
    ],
}


def _session_settings() -> list:
    """This thread's connection's answer to each of SESSION_SETTINGS' queries."""
    with connection.cursor() as cursor:
        answers = []
        for query, _, _ in SESSION_SETTINGS[connection.vendor]:
            cursor.execute(query)
            answers.append(cursor.fetchone()[0])
        return answers


def test_the_dispatchers_connections_are_set_up_as_a_dispatchers_and_the_webs_are_not(
    scripted_server, user, monkeypatch
):
    """What a dispatcher writes is redone if a crash undoes it (broadcast/sessions.py):
    its rounds, on the loop's connection and on the database thread's, run at SQLite's
    synchronous=NORMAL or PostgreSQL's synchronous_commit = off, and on PostgreSQL
    with generic plans; other connections keep the defaults."""
    settings = SESSION_SETTINGS[connection.vendor]
    during_rounds = []
    exchange = store.exchange

    def watched_exchange(**kwargs):
        during_rounds.append((threading.current_thread().name, tuple(_session_settings())))
        return exchange(**kwargs)

    monkeypatch.setattr(store, "exchange", watched_exchange)
    for i in range(30):
        defect_create(user=user, comment=str(i))
    # In a thread of its own, as `manage.py broadcast`: its loop's rounds (the first,
    # nothing queued) on a connection it opens, the others on its database thread.
    thread = threading.Thread(
        target=deliver_once, args=(scripted_server.url,), kwargs={"batch_size": 10}
    )
    thread.start()
    thread.join(30)
    assert Event.objects.delivered().count() == 30
    assert len({name for name, _ in during_rounds}) == 2
    assert {answers for _, answers in during_rounds} == {tuple(d for _, d, _ in settings)}
    assert _session_settings() == [web for _, _, web in settings]  # this test's, as the web's


def test_retention_runs_on_a_dispatchers_connection_with_the_default_plans(
    scripted_server, monkeypatch
):
    """Retention's plan depends on its cutoff (sessions.custom_plans): on PostgreSQL it
    plans for its values, and the round after it generically again."""
    settings = SESSION_SETTINGS[connection.vendor]
    during_retention, during_rounds = [], []
    prune, exchange = rounds.prune_delivered, store.exchange

    def watched_prune(**kwargs):
        during_retention.append(_session_settings())
        return prune(**kwargs)

    def watched_exchange(**kwargs):
        during_rounds.append(_session_settings())
        return exchange(**kwargs)

    monkeypatch.setattr(rounds, "prune_delivered", watched_prune)
    monkeypatch.setattr(store, "exchange", watched_exchange)
    events_enqueue(payloads=[{"user": 1, "action": "create"}] * 3)
    thread = threading.Thread(
        target=deliver_once, args=(scripted_server.url,), kwargs={"retention_days": 7}
    )
    thread.start()
    thread.join(30)
    assert Event.objects.delivered().count() == 3
    # How it commits stays the dispatcher's; on PostgreSQL it plans as the web does.
    expected = [settings[0][1]] + [web for _, _, web in settings[1:]]
    assert during_retention == [expected]
    assert during_rounds[-1] == [dispatcher for _, dispatcher, _ in settings]


def test_custom_plans_changes_nothing_on_a_connection_that_is_not_a_dispatchers():
    webs = [web for _, _, web in SESSION_SETTINGS[connection.vendor]]
    assert _session_settings() == webs
    with sessions.custom_plans():
        assert _session_settings() == webs
    assert _session_settings() == webs


def test_a_kept_cursor_is_the_same_db_api_cursor_until_the_connection_is_new():
    first = sessions.kept_cursor()
    assert sessions.kept_cursor().cursor is first.cursor
    connection.close()
    _assert_a_new_working_cursor_after(first)


@pytest.mark.postgres
def test_a_kept_cursor_closed_by_mistake_is_made_again():
    first = sessions.kept_cursor()
    first.close()
    _assert_a_new_working_cursor_after(first)


@pytest.mark.postgres
def test_a_kept_cursor_is_made_again_once_its_broken_connection_is_replaced():
    """A PostgreSQL restart: the round fails, the connection check replaces the
    connection (broadcast/dbcalls.py), and the next round runs on a new cursor."""
    first = sessions.kept_cursor()
    with pytest.raises(OperationalError):
        first.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    connection.close_if_unusable_or_obsolete()
    _assert_a_new_working_cursor_after(first)


def _assert_a_new_working_cursor_after(first) -> None:
    """The next kept cursor is another DB-API cursor than `first`'s, and it works."""
    again = sessions.kept_cursor()
    assert again.cursor is not first.cursor
    again.execute("SELECT 1")
    assert again.fetchone() == (1,)


def test_a_kept_cursor_is_this_threads():
    mine = sessions.kept_cursor().cursor
    theirs = []

    def other_thread():
        theirs.append(sessions.kept_cursor().cursor)
        connection.close()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    assert theirs and theirs[0] is not mine
    assert sessions.kept_cursor().cursor is mine


def test_a_kept_cursor_logs_its_queries_as_any_cursor():
    """It is wrapped afresh at each call, so a query log opened after it was made sees it."""
    sessions.kept_cursor()
    with CaptureQueriesContext(connection) as captured:
        sessions.kept_cursor().execute("SELECT 2")
    assert [query["sql"] for query in captured] == ["SELECT 2"]


def test_a_round_runs_on_the_kept_cursor_on_postgresql_and_on_its_own_on_sqlite():
    """sessions.kept_cursor: each round on PostgreSQL is one statement, on the same
    DB-API cursor; on SQLite a round's statements share a cursor of its own."""
    per_round = []

    def watch(execute, sql, params, many, context):
        if "broadcast_event" in sql:  # not SQLite's BEGIN
            per_round[-1].add(context["cursor"].cursor)
        return execute(sql, params, many, context)

    claimed = []
    for _ in range(3):
        events_enqueue(payloads=[{"user": 1, "action": "create"}] * 2)
        per_round.append(set())
        answered = [(event, DELIVERED) for event in claimed]
        with connection.execute_wrapper(watch):
            claimed = store.exchange(owner="o", outcomes=answered, limit=10, lease=60)
    assert Event.objects.delivered().count() == 4
    recording = per_round[1:]  # the first round, with nothing to record, only claims
    assert [len(cursors) for cursors in recording] == [1, 1]
    kept = connection.vendor == "postgresql"
    assert (recording[0] == recording[1]) is kept
