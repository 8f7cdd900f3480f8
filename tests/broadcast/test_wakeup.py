"""broadcast/wakeup.py: on PostgreSQL, LISTEN/NOTIFY wakes the dispatcher at commit.

The dispatcher polls only every 5 seconds here, so an event that reaches the
real counter server within 100 ms of its commit was announced by NOTIFY, not
found by a poll.
"""

import signal
import statistics
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from broadcast.models import Event
from broadcast.services import NOTIFY_CHANNEL
from defect.services import defect_create
from tests.helpers import CounterServer, free_port, start_dispatcher, stop, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

POLL_INTERVAL = 5
WITHIN = timedelta(milliseconds=100)


def _listening() -> bool:
    """Whether a session of this database has run LISTEN on the broadcast channel."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query = %s",
            [f"LISTEN {NOTIFY_CHANNEL}"],
        )
        return cursor.fetchone()[0] > 0


def _arrival_latency(server: CounterServer, user) -> timedelta:
    """From the commit of one new defect to its event's arrival (the counter server's log).

    Not to the row's delivered_at: the dispatcher records outcomes at its next
    round, which for a lone event is the next NOTIFY or poll.
    """
    defect = defect_create(user=user, comment="Horn silent")  # committed on return
    committed = timezone.now()
    event = Event.objects.latest("id")
    assert event.payload == {"user": defect.user_id, "action": "create"}
    wait_for(
        lambda: server.arrival(event.key) is not None,
        timeout=3 * POLL_INTERVAL,
        interval=0.01,
        message="the event's arrival",
    )
    return server.arrival(event.key) - committed


def test_notify_delivers_within_100_ms_while_polling_every_5_seconds(tmp_path, user):
    server = CounterServer(free_port(), tmp_path / "counter.log").start()
    dispatcher = start_dispatcher(
        server.url, tmp_path / "dispatcher.log", BROADCAST_POLL_INTERVAL=str(POLL_INTERVAL)
    )
    try:
        wait_for(_listening, timeout=30, message="the dispatcher to LISTEN")
        # The median of five: one slow moment on a shared machine does not decide it,
        # and a poll lands within 100 ms of a commit about once in 50.
        latencies = [_arrival_latency(server, user) for _ in range(5)]
        assert statistics.median(latencies) < WITHIN, latencies
        assert server.counts() == {str(user.pk): {"create": 5, "delete": 0}}
    finally:
        stop(dispatcher, signal.SIGKILL)
        server.stop()


def _listening_connection():
    """A connection of its own that LISTENs on the dispatchers' channel."""
    import psycopg

    from broadcast.wakeup import PostgresListener

    listening = psycopg.connect(PostgresListener(lambda: None)._conninfo(), autocommit=True)
    listening.execute(f"LISTEN {NOTIFY_CHANNEL}")
    return listening


def _notifications(listening, seconds: float = 0.5) -> int:
    """The notifications that arrive within `seconds`."""
    return sum(1 for _ in listening.notifies(timeout=seconds))


def test_an_insert_notifies_once_per_statement_at_commit_and_never_on_rollback():
    from django.db import transaction

    from broadcast.services import event_enqueue, events_enqueue

    listening = _listening_connection()
    try:
        with transaction.atomic():
            events_enqueue(payloads=[{"user": 1, "action": "create"}] * 3)  # one INSERT
            assert _notifications(listening, 0.2) == 0  # not before the commit
        assert _notifications(listening) == 1
        with pytest.raises(RuntimeError), transaction.atomic():
            event_enqueue(payload={"user": 1, "action": "create"})
            raise RuntimeError("roll back")
        assert _notifications(listening) == 0
    finally:
        listening.close()


def test_a_release_and_a_requeue_wake_the_dispatchers(user):
    from broadcast import store
    from broadcast.models import Status
    from broadcast.replay import requeue_failed

    defect_create(user=user, comment="a")
    defect_create(user=user, comment="b")
    Event.objects.filter(pk=Event.objects.latest("id").pk).update(status=Status.FAILED)
    store.claim(owner="A", limit=10, lease=60)
    listening = _listening_connection()
    try:
        assert store.release(owner="A") == 1
        assert _notifications(listening) == 1
        assert requeue_failed() == 1
        assert _notifications(listening) == 1
    finally:
        listening.close()


def test_a_burst_of_commits_wakes_the_dispatcher_at_once_then_once_more(monkeypatch, user):
    """20 commits in a row: the first wakes it at once, the rest wait out the coalescing."""
    import threading

    from broadcast import wakeup

    monkeypatch.setattr(wakeup, "COALESCE_SECONDS", 1.0)
    woken = threading.Semaphore(0)
    wakes = []

    def wake():
        wakes.append(timezone.now())
        woken.release()

    with wakeup.PostgresListener(wake) as listener:
        wait_for(listener.listening.is_set, timeout=10, message="LISTEN")
        assert woken.acquire(timeout=10)  # the catch-up wake-up after LISTEN
        wakes.clear()
        for i in range(20):
            defect_create(user=user, comment=f"c{i}")
        assert woken.acquire(timeout=5)
        assert len(wakes) == 1  # at once for the first
        more = woken.acquire(timeout=3)  # the rest, if they came after it, 1 s later
        assert len(wakes) == (2 if more else 1)
        assert not woken.acquire(timeout=1.5)  # and nothing more


def test_set_listening_takes_listen_away_and_back_with_a_catch_up_wake(user):
    """Not listening, a commit wakes nothing; listening again, one wake-up catches up."""
    import threading

    from broadcast import wakeup

    woken = threading.Semaphore(0)
    with wakeup.PostgresListener(woken.release) as listener:
        wait_for(listener.listening.is_set, timeout=10, message="LISTEN")
        assert woken.acquire(timeout=10)  # the catch-up wake-up after LISTEN
        listener.set_listening(False)
        wait_for(lambda: not listener.listening.is_set(), timeout=10, message="UNLISTEN")
        defect_create(user=user, comment="committed while not listening")
        assert not woken.acquire(timeout=0.5)
        listener.set_listening(True)
        wait_for(listener.listening.is_set, timeout=10, message="LISTEN again")
        assert woken.acquire(timeout=5)
        defect_create(user=user, comment="heard")
        assert woken.acquire(timeout=5)
