"""broadcast/sessions.py: a dispatcher's connections are set up as a dispatcher's, the web's not."""

import threading

import pytest
from django.db import connection

from broadcast import sessions, store
from broadcast.dispatch import rounds
from broadcast.services import events_enqueue
from defect.services import defect_create
from tests.broadcast.conftest import deliver_once
from tests.helpers import counter_deliveries

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
    its rounds, on its database thread's connection and on its loop's, run at SQLite's
    synchronous=NORMAL or PostgreSQL's synchronous_commit = off, and on PostgreSQL with
    generic plans; other connections keep the defaults."""
    settings = SESSION_SETTINGS[connection.vendor]
    during_rounds = []
    exchange = store.exchange

    def watched_exchange(**kwargs):
        during_rounds.append((threading.current_thread().name, tuple(_session_settings())))
        return exchange(**kwargs)

    monkeypatch.setattr(store, "exchange", watched_exchange)
    for i in range(30):
        defect_create(user=user, comment=str(i))
    # In a thread of its own, as `manage.py broadcast`.
    thread = threading.Thread(
        target=deliver_once, args=(scripted_server.url,), kwargs={"batch_size": 10}, name="loop"
    )
    thread.start()
    thread.join(30)
    assert counter_deliveries().delivered().count() == 30
    assert {name.split("_")[0] for name, _ in during_rounds} == {"broadcast-db", "loop"}
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
    events_enqueue(payloads=[{"user": 1, "action": "create"}] * 3, action="create")
    thread = threading.Thread(
        target=deliver_once, args=(scripted_server.url,), kwargs={"retention_days": 7}
    )
    thread.start()
    thread.join(30)
    assert counter_deliveries().delivered().count() == 3
    # How it commits stays the dispatcher's; on PostgreSQL it plans as the web does.
    expected = [settings[0][1]] + [web for _, _, web in settings[1:]]
    assert during_retention == [expected]
    assert during_rounds[-1] == [dispatcher for _, dispatcher, _ in settings]


def test_a_new_connection_is_set_up_as_a_dispatchers_again():
    """After the connection is closed (a restart, CONN_MAX_AGE), the next is set up too."""
    dispatchers = [dispatcher for _, dispatcher, _ in SESSION_SETTINGS[connection.vendor]]
    webs = [web for _, _, web in SESSION_SETTINGS[connection.vendor]]

    def session_of_a_thread_of_its_own() -> list:
        session = sessions.Session()
        session.set_up()
        first = _session_settings()
        connection.close()
        assert _session_settings() == webs  # a new connection: Django's defaults
        session.set_up()
        try:
            return [first, _session_settings()]
        finally:
            connection.close()

    seen: list = []
    thread = threading.Thread(target=lambda: seen.extend(session_of_a_thread_of_its_own()))
    thread.start()
    thread.join(30)
    assert seen == [dispatchers, dispatchers]
    assert _session_settings() == webs
