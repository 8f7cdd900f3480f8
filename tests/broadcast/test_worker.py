"""The dispatcher against a real HTTP server with scripted answers."""

import datetime
import json
import socket
import threading
import time

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from broadcast import store
from broadcast.client import DELIVERED, Outcome, Result
from broadcast.models import Event, Status
from broadcast.worker import Dispatcher
from defect.services import defect_create, defect_delete
from tests.broadcast.conftest import Answer, deliver_once, make_config
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def make_due():
    Event.objects.update(available_at=timezone.now())


def test_delivers_exact_payloads_with_idempotency_keys(scripted_server, user, other_user):
    defect = defect_create(user=user, comment="a")
    defect_create(user=other_user, comment="b")
    defect_delete(defect=defect)

    deliver_once(scripted_server.url)

    bodies = [json.loads(r.body) for r in scripted_server.received]
    assert sorted(bodies, key=lambda b: (b["user"], b["action"])) == sorted(
        [
            {"user": user.pk, "action": "create"},
            {"user": other_user.pk, "action": "create"},
            {"user": user.pk, "action": "delete"},
        ],
        key=lambda b: (b["user"], b["action"]),
    )
    assert all(r.headers["Content-Type"] == "application/json" for r in scripted_server.received)
    keys = {r.headers["Idempotency-Key"] for r in scripted_server.received}
    assert keys == {str(k) for k in Event.objects.values_list("key", flat=True)}
    assert set(Event.objects.values_list("status", "attempts")) == {(Status.DELIVERED, 1)}


def test_server_error_is_retried_with_the_same_key(scripted_server, user):
    scripted_server.script = [Answer(500), Answer(503)]
    defect_create(user=user, comment="a")

    before = timezone.now()
    deliver_once(scripted_server.url)
    event = Event.objects.get()
    assert (event.status, event.attempts) == (Status.PENDING, 1)
    assert "HTTP 500" in event.last_error
    # First retry after about one second (+/-20% jitter).
    wait = (event.available_at - before).total_seconds()
    assert 0.7 <= wait <= 1.5

    make_due()
    deliver_once(scripted_server.url)
    event.refresh_from_db()
    assert (event.status, event.attempts) == (Status.PENDING, 2)
    assert 1.5 <= (event.available_at - timezone.now()).total_seconds() <= 2.5

    make_due()
    deliver_once(scripted_server.url)
    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error) == (Status.DELIVERED, 3, "")
    keys = {r.headers["Idempotency-Key"] for r in scripted_server.received}
    assert keys == {str(event.key)}


@pytest.mark.parametrize("status", [408, 429, 502])
def test_retryable_statuses(scripted_server, user, status):
    scripted_server.script = [Answer(status)]
    defect_create(user=user, comment="a")
    deliver_once(scripted_server.url)
    event = Event.objects.get()
    assert event.status == Status.PENDING and f"HTTP {status}" in event.last_error


def test_retry_after_is_honoured(scripted_server, user):
    scripted_server.script = [Answer(429, {"Retry-After": "120"})]
    defect_create(user=user, comment="a")
    deliver_once(scripted_server.url)
    event = Event.objects.get()
    assert 115 <= (event.available_at - timezone.now()).total_seconds() <= 121


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_client_errors_fail_permanently(scripted_server, user, status):
    scripted_server.script = [Answer(status)]
    defect_create(user=user, comment="a")
    deliver_once(scripted_server.url)
    event = Event.objects.get()
    assert (event.status, event.attempts) == (Status.FAILED, 1)
    assert f"HTTP {status}" in event.last_error

    make_due()
    deliver_once(scripted_server.url)
    assert len(scripted_server.received) == 1  # not retried blindly


def test_connection_refused_is_retried(user):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    defect_create(user=user, comment="a")
    deliver_once(f"http://127.0.0.1:{port}/")
    event = Event.objects.get()
    assert (event.status, event.attempts) == (Status.PENDING, 1)
    assert "Connect" in event.last_error


def test_timeout_is_retried(scripted_server, user):
    scripted_server.script = [Answer(200, delay=1.0)]
    defect_create(user=user, comment="a")
    deliver_once(scripted_server.url, request_timeout=0.2)
    event = Event.objects.get()
    assert (event.status, event.last_error) == (Status.PENDING, "timed out")


def test_nothing_due_means_nothing_sent(scripted_server, user):
    defect_create(user=user, comment="a")
    Event.objects.update(available_at=timezone.now() + datetime.timedelta(minutes=5))
    deliver_once(scripted_server.url)
    assert scripted_server.received == []


def test_claims_are_exclusive_until_the_lease_expires(user):
    defect_create(user=user, comment="a")
    first = store.claim(owner="A", limit=10, lease=60)
    assert [c.id for c in first] == list(Event.objects.values_list("id", flat=True))
    assert store.claim(owner="B", limit=10, lease=60) == []

    # A dies; its lease runs out; B takes the event over.
    Event.objects.update(available_at=timezone.now() - datetime.timedelta(seconds=1))
    second = store.claim(owner="B", limit=10, lease=60)
    assert [c.key for c in second] == [c.key for c in first]
    assert Event.objects.get().claimed_by == "B"


def test_a_claim_takes_the_longest_waiting_due_events_up_to_its_limit(user):
    for i in range(4):
        defect_create(user=user, comment=str(i))
    now = timezone.now()
    events = list(Event.objects.order_by("id"))
    # Due in the reverse order of their ids; the last one not due yet.
    for age, event in zip([1, 2, 3, -60], events, strict=True):
        Event.objects.filter(pk=event.pk).update(
            available_at=now - datetime.timedelta(seconds=age), attempts=age % 3
        )

    claimed = store.claim(owner="A", limit=2, lease=30)

    assert [c.id for c in claimed] == sorted([events[2].pk, events[1].pk])
    by_id = {event.pk: event for event in events}
    for c in claimed:
        event = Event.objects.get(pk=c.id)
        assert c.key == str(by_id[c.id].key)
        assert c.payload == {"user": user.pk, "action": "create"}
        assert c.attempts == event.attempts
        assert event.claimed_by == "A"
        assert event.available_at >= now + datetime.timedelta(seconds=29)
    assert Event.objects.filter(claimed_by="").count() == 2


def test_concurrent_claims_never_overlap_nor_exceed_their_limit(user):
    from defect.models import Defect

    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(50)])
    start = threading.Barrier(4)
    claims: dict[str, list[int]] = {}

    def claimer(owner: str) -> None:
        try:
            start.wait(5)
            claims[owner] = [c.id for c in store.claim(owner=owner, limit=10, lease=60)]
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(f"D{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(len(ids) for ids in claims.values()) == [10, 10, 10, 10]
    every = [i for ids in claims.values() for i in ids]
    assert len(set(every)) == 40
    for owner, ids in claims.items():
        assert set(Event.objects.filter(claimed_by=owner).values_list("id", flat=True)) == set(ids)


def test_a_stale_owner_cannot_undo_a_delivery(user):
    defect_create(user=user, comment="a")
    (claimed,) = store.claim(owner="A", limit=10, lease=0)
    (again,) = store.claim(owner="B", limit=10, lease=60)
    store.record(owner="B", outcomes=[(again, DELIVERED, None)])
    store.record(owner="A", outcomes=[(claimed, Outcome(Result.RETRY, "late"), 5.0)])
    assert Event.objects.get().status == Status.DELIVERED


def test_release_makes_claims_due_at_once(user):
    defect_create(user=user, comment="a")
    store.claim(owner="A", limit=10, lease=60)
    assert store.release(owner="A") == 1
    assert len(store.claim(owner="B", limit=10, lease=60)) == 1


def test_many_events_are_each_sent_once(scripted_server, user):
    from defect.models import Defect

    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(300)])
    deliver_once(scripted_server.url, concurrency=16, batch_size=40)
    keys = [r.headers["Idempotency-Key"] for r in scripted_server.received]
    assert len(keys) == 300 == len(set(keys))
    assert Event.objects.delivered().count() == 300


def test_answers_refill_the_queue_at_once_even_with_batches_smaller_than_concurrency(
    scripted_server, user
):
    from defect.models import Defect

    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(20)])
    started = time.monotonic()
    # Five batches of 4; waiting for the 5 s poll between them would take 25 s.
    deliver_once(scripted_server.url, concurrency=16, batch_size=4, poll_interval=5.0)
    assert Event.objects.delivered().count() == 20
    assert time.monotonic() - started < 4


def test_exchange_records_outcomes_and_claims_the_next_events(user):
    defect_create(user=user, comment="a")
    (first,) = store.claim(owner="A", limit=1, lease=60)
    defect_create(user=user, comment="b")
    claimed = store.exchange(owner="A", outcomes=[(first, DELIVERED, None)], limit=10, lease=60)
    assert Event.objects.get(pk=first.id).status == Status.DELIVERED
    assert [c.id for c in claimed] == list(Event.objects.pending().values_list("id", flat=True))


def test_a_lease_shorter_than_two_timeouts_is_refused():
    from broadcast.worker import Config

    with pytest.raises(ValueError, match="twice the request timeout"):
        Config(url="http://127.0.0.1:1/", lease=10, request_timeout=6)


def test_an_event_whose_lease_would_expire_in_flight_is_not_sent(scripted_server, user):
    # One request at a time, each answered after 1.5 s, leases of 4 s and a 2 s
    # timeout: the third event would still be in flight when its lease ends.
    scripted_server.script = [Answer(200, delay=1.5) for _ in range(3)]
    for i in range(3):
        defect_create(user=user, comment=str(i))
    deliver_once(scripted_server.url, concurrency=1, batch_size=10, lease=4, request_timeout=2)
    assert len(scripted_server.received) == 2
    assert Event.objects.delivered().count() == 2
    left = Event.objects.pending().get()
    assert (left.attempts, left.claimed_by) == (0, "")  # released, due again at once
    assert left.available_at <= timezone.now()


def test_breaker_opens_after_a_run_of_failures_and_closes_on_success():
    from broadcast.breaker import Breaker
    from broadcast.client import DELIVERED, Outcome, Result

    breaker = Breaker(threshold=3, probe_interval=60)
    refused = Outcome(Result.RETRY, "refused")
    for _ in range(2):
        breaker.saw(refused)
    assert breaker.allowance(500) == 500
    breaker.saw(refused)
    assert breaker.allowance(500) == 1  # one probe...
    assert breaker.allowance(500) == 0  # ...per interval
    breaker.saw(DELIVERED)
    assert breaker.allowance(500) == 500


def test_a_down_counter_server_is_probed_not_hammered(user):

    from broadcast.worker import Dispatcher
    from defect.models import Defect
    from tests.broadcast.conftest import make_config

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there
    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(300)])
    dispatcher = Dispatcher(
        make_config(f"http://127.0.0.1:{port}/", concurrency=8, batch_size=50, retry_base=5)
    )

    threading.Timer(1.5, dispatcher.stop).start()
    dispatcher.run()
    attempted = Event.objects.filter(attempts__gt=0).count()
    assert 8 <= attempted <= 50 + 8  # the first batch, then a probe now and then
    assert Event.objects.pending().count() == 300  # nothing lost, nothing failed


def test_a_dispatcher_survives_losing_its_database_connection(scripted_server, user, monkeypatch):
    dispatcher = Dispatcher(make_config(scripted_server.url))
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        defect_create(user=user, comment="before")
        wait_for(lambda: Event.objects.delivered().count() == 1, timeout=10)

        if connection.vendor == "postgresql":
            # What a database restart or a network cut does to its sessions.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        else:
            # A SQLite file has no server to lose: its failures are errors such as
            # "database is locked" past the timeout. Make the next round fail so.
            exchange = store.exchange
            failures = []

            def failing_once(**kwargs):
                if not failures:
                    failures.append(True)
                    raise OperationalError("database is locked")
                return exchange(**kwargs)

            monkeypatch.setattr(store, "exchange", failing_once)
        defect_create(user=user, comment="after")

        wait_for(lambda: Event.objects.delivered().count() == 2, timeout=10)
        keys = [r.headers["Idempotency-Key"] for r in scripted_server.received]
        assert sorted(keys) == sorted(str(k) for k in Event.objects.values_list("key", flat=True))
    finally:
        dispatcher.stop()
        thread.join(15)
