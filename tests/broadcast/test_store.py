"""The dispatcher's database side (broadcast/store.py): claims, leases, records, release."""

import datetime
import threading

import pytest
from django.db import connection
from django.utils import timezone

from broadcast import store
from broadcast.dispatch.policy import DELIVERED, Decision, Verdict
from broadcast.models import Event, Status
from broadcast.services import events_enqueue
from defect.services import defect_create

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_a_claim_returns_each_events_creation_time_in_unix_seconds(user):
    defect_create(user=user, comment="a")
    created = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
    Event.objects.update(created_at=created, available_at=created)

    [claimed] = store.claim(owner="A", limit=10, lease=60)

    assert type(claimed.created) is float
    # SQLite's julianday() keeps milliseconds; PostgreSQL keeps microseconds.
    assert claimed.created == pytest.approx(created.timestamp(), abs=0.001)


def test_a_claim_returns_every_payload_intact_however_many_it_claims():
    """Quotes, backslashes, control and non-ASCII characters, in a claim of 500."""
    payloads = [
        {"user": i, "action": "create", "note": f'"quoted" \\ back\tslash\n é 中 🚆 {i}'}
        for i in range(500)
    ]
    events_enqueue(payloads=payloads, action="create")

    claimed = store.claim(owner="A", limit=500, lease=60)

    assert [c.payload for c in claimed] == payloads
    assert all(type(c.body) is str for c in claimed)
    assert Event.objects.filter(claimed_by="A").count() == 500


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
    store.record(owner="B", outcomes=[(again, DELIVERED)])
    store.record(owner="A", outcomes=[(claimed, Decision(Verdict.RETRY, delay=5.0, error="late"))])
    assert Event.objects.get().status == Status.DELIVERED


def test_release_makes_claims_due_at_once(user):
    defect_create(user=user, comment="a")
    store.claim(owner="A", limit=10, lease=60)
    assert store.release(owner="A") == 1
    assert len(store.claim(owner="B", limit=10, lease=60)) == 1


def test_exchange_records_outcomes_and_claims_the_next_events(user):
    defect_create(user=user, comment="a")
    (first,) = store.claim(owner="A", limit=1, lease=60)
    defect_create(user=user, comment="b")
    claimed = store.exchange(owner="A", outcomes=[(first, DELIVERED)], limit=10, lease=60)
    assert Event.objects.get(pk=first.id).status == Status.DELIVERED
    assert [c.id for c in claimed] == list(Event.objects.pending().values_list("id", flat=True))


def test_exchange_never_claims_back_an_event_it_records_as_delivered(user):
    """Its lease ran out, so it is due again: the round marks it delivered and leaves it
    out of the claim (on PostgreSQL the two are one statement, which must not update a
    row twice)."""
    defect_create(user=user, comment="a")
    (claimed,) = store.claim(owner="A", limit=10, lease=0)  # due again at once
    defect_create(user=user, comment="b")
    again = store.exchange(owner="A", outcomes=[(claimed, DELIVERED)], limit=10, lease=60)
    event = Event.objects.get(pk=claimed.id)
    assert (event.status, event.attempts, event.claimed_by) == (Status.DELIVERED, 1, "")
    assert [c.id for c in again] == list(Event.objects.pending().values_list("id", flat=True))


def test_exchange_records_its_deliveries_when_nothing_is_due(user):
    """On PostgreSQL the claim reads the deliveries' CTE only for rows it considers:
    with nothing due, they are recorded all the same."""
    defect_create(user=user, comment="a")
    (claimed,) = store.claim(owner="A", limit=10, lease=60)
    again = store.exchange(owner="A", outcomes=[(claimed, DELIVERED)], limit=10, lease=60)
    assert again == []
    event = Event.objects.get(pk=claimed.id)
    assert (event.status, event.attempts, event.claimed_by) == (Status.DELIVERED, 1, "")


def test_exchange_records_retries_and_deliveries_and_claims_in_one_round(user):
    defect_create(user=user, comment="a")
    defect_create(user=user, comment="b")
    first, second = store.claim(owner="A", limit=10, lease=60)
    defect_create(user=user, comment="c")
    now = timezone.now()
    retry = Decision(Verdict.RETRY, delay=30.0, error="HTTP 503")
    claimed = store.exchange(
        owner="A", outcomes=[(first, DELIVERED), (second, retry)],
        limit=10, lease=60, now=now,
    )  # fmt: skip
    assert Event.objects.get(pk=first.id).status == Status.DELIVERED
    retried = Event.objects.get(pk=second.id)
    assert (retried.status, retried.attempts, retried.last_error) == (Status.PENDING, 1, "HTTP 503")
    assert retried.available_at == now + datetime.timedelta(seconds=30)
    assert [c.id for c in claimed] == [Event.objects.latest("id").pk]


def test_an_exchange_that_claims_nothing_still_records_every_outcome(user):
    """A round with no claim (the breaker open, the broadcast paused) records its
    retries in a transaction on every database (they lock the rows they update)."""
    defect_create(user=user, comment="a")
    defect_create(user=user, comment="b")
    first, second = store.claim(owner="A", limit=10, lease=60)
    defect_create(user=user, comment="c")
    retry = Decision(Verdict.RETRY, delay=30.0, error="ConnectError: refused")
    claimed = store.exchange(
        owner="A", outcomes=[(first, DELIVERED), (second, retry)], limit=0, lease=60
    )
    assert claimed == []
    assert Event.objects.get(pk=first.id).status == Status.DELIVERED
    retried = Event.objects.get(pk=second.id)
    assert (retried.status, retried.attempts, retried.claimed_by) == (Status.PENDING, 1, "")
    assert Event.objects.pending().filter(claimed_by="", attempts=0).count() == 1
