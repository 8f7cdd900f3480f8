"""broadcast/dispatch/wake.py: a commit wakes the dispatcher (LISTEN on PostgreSQL, the
doorbell on SQLite), bursts coalesced, switched off and on by the pacer.

In the end-to-end test the dispatcher polls only every 5 seconds, so an event that
reaches the real counter server within 100 ms of its commit was announced, not found
by a poll.
"""

import os
import signal
import statistics
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from broadcast.dispatch import wake
from broadcast.doorbell import doorbell_path
from broadcast.models import Event
from defect.services import defect_create
from tests.helpers import CounterServer, free_port, start_dispatcher, stop, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

POLL_INTERVAL = 5
WITHIN = timedelta(milliseconds=100)


def _arrival_latency(server: CounterServer, user) -> timedelta:
    """From the commit of one new defect to its event's arrival (the counter server's log)."""
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


@pytest.mark.e2e
def test_a_commit_is_delivered_within_100_ms_while_polling_every_5_seconds(tmp_path, user):
    server = CounterServer(free_port(), tmp_path / "counter.log").start()
    dispatcher = start_dispatcher(
        server.url, tmp_path / "dispatcher.log", BROADCAST_POLL_INTERVAL=str(POLL_INTERVAL)
    )
    try:
        # Delivered once the dispatcher is up and listening (its catch-up at the latest).
        _arrival_latency(server, user)
        # The median of five: one slow moment on a shared machine does not decide it,
        # and a poll lands within 100 ms of a commit about once in 50.
        latencies = [_arrival_latency(server, user) for _ in range(5)]
        assert statistics.median(latencies) < WITHIN, latencies
        assert server.counts() == {str(user.pk): {"create": 6, "delete": 0}}
    finally:
        stop(dispatcher, signal.SIGKILL)
        server.stop()


def _listening_announcer(wake_up):
    announcer = wake.announcer_for()(wake_up)
    assert not isinstance(announcer, wake.NoAnnouncer)
    return announcer


def test_a_burst_of_commits_wakes_the_dispatcher_at_once_then_once_more(monkeypatch, user):
    """20 commits in a row: the first wakes it at once, the rest wait out the coalescing."""
    monkeypatch.setattr(wake, "COALESCE_SECONDS", 1.0)
    woken = threading.Semaphore(0)
    wakes = []

    def wake_up():
        wakes.append(timezone.now())
        woken.release()

    with _listening_announcer(wake_up) as announcer:
        wait_for(announcer.listening.is_set, timeout=10, message="listening")
        assert woken.acquire(timeout=10)  # the catch-up wake-up
        wakes.clear()
        for i in range(20):
            defect_create(user=user, comment=f"c{i}")
        assert woken.acquire(timeout=5)
        assert len(wakes) == 1  # at once for the first
        more = woken.acquire(timeout=3)  # the rest, if they came after it, 1 s later
        assert len(wakes) == (2 if more else 1)
        assert not woken.acquire(timeout=1.5)  # and nothing more


def test_set_listening_takes_announcements_away_and_back_with_a_catch_up_wake(user):
    """Not listening, a commit wakes nothing; listening again, one wake-up catches up."""
    woken = threading.Semaphore(0)
    with _listening_announcer(woken.release) as announcer:
        wait_for(announcer.listening.is_set, timeout=10, message="listening")
        assert woken.acquire(timeout=10)  # the catch-up wake-up
        announcer.set_listening(False)
        wait_for(lambda: not announcer.listening.is_set(), timeout=10, message="not listening")
        defect_create(user=user, comment="committed while not listening")
        assert not woken.acquire(timeout=0.5)
        announcer.set_listening(True)
        wait_for(announcer.listening.is_set, timeout=10, message="listening again")
        assert woken.acquire(timeout=5)
        defect_create(user=user, comment="heard")
        assert woken.acquire(timeout=5)


def _rung(path: str) -> bool:
    """Whether the doorbell was touched since `_unring` (the kernel's clock is too coarse
    to tell two rings a few milliseconds apart)."""
    return os.stat(path).st_mtime_ns != 0


def _unring(path: str) -> None:
    os.utime(path, ns=(0, 0))


@pytest.mark.sqlite
def test_the_doorbell_rings_after_commit_and_never_for_a_rollback(user):
    path = doorbell_path()
    defect_create(user=user, comment="creates the doorbell")
    _unring(path)
    with transaction.atomic():
        defect_create(user=user, comment="a")
        assert not _rung(path)  # not before the commit
    assert _rung(path)
    _unring(path)
    with pytest.raises(RuntimeError), transaction.atomic():
        defect_create(user=user, comment="rolled back")
        raise RuntimeError
    assert not _rung(path)


@pytest.mark.sqlite
def test_the_doorbell_rings_before_the_commits_write_lock_is_released(user):
    path = doorbell_path()
    defect_create(user=user, comment="creates the doorbell")
    _unring(path)
    rung_before_unlock = []
    with transaction.atomic():
        defect_create(user=user, comment="a")
        connection.connection.before_unlock(lambda: rung_before_unlock.append(_rung(path)))
    assert rung_before_unlock == [True]
