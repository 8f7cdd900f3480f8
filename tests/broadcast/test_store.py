"""The dispatcher's database side (broadcast/store.py): claims, leases, records, release."""

import datetime
import json
import threading

import pytest
from django.db import connection
from django.utils import timezone

from broadcast import store
from broadcast.destinations import destination_create
from broadcast.dispatch.policy import DELIVERED, Decision, Verdict
from broadcast.models import Delivery, Status
from broadcast.services import events_enqueue
from defect.services import defect_create
from tests.helpers import builtin_destination, counter_deliveries

pytestmark = pytest.mark.django_db(transaction=True)


def builtin(limit: int) -> dict[int, int]:
    """Claim limits for the built-in destination alone (the only one unless a test adds one)."""
    return {builtin_destination().pk: limit}


def test_claims_are_exclusive_until_the_lease_expires(user):
    defect_create(user=user, comment="a")
    first = store.claim(owner="A", limits=builtin(10), lease=60)
    assert [c.id for c in first] == list(counter_deliveries().values_list("id", flat=True))
    assert store.claim(owner="B", limits=builtin(10), lease=60) == []

    # A dies; its lease runs out; B takes the delivery over.
    Delivery.objects.update(available_at=timezone.now() - datetime.timedelta(seconds=1))
    second = store.claim(owner="B", limits=builtin(10), lease=60)
    assert [c.key for c in second] == [c.key for c in first]
    assert counter_deliveries().get().claimed_by == "B"


def test_a_claim_takes_the_longest_waiting_due_deliveries_up_to_its_limit(user):
    for i in range(4):
        defect_create(user=user, comment=str(i))
    now = timezone.now()
    deliveries = list(counter_deliveries().select_related("event").order_by("id"))
    # Due in the reverse order of their ids; the last one not due yet.
    for age, delivery in zip([1, 2, 3, -60], deliveries, strict=True):
        Delivery.objects.filter(pk=delivery.pk).update(
            available_at=now - datetime.timedelta(seconds=age), attempts=age % 3
        )

    claimed = store.claim(owner="A", limits=builtin(2), lease=30)

    assert [c.id for c in claimed] == sorted([deliveries[2].pk, deliveries[1].pk])
    by_id = {delivery.pk: delivery for delivery in deliveries}
    for c in claimed:
        delivery = Delivery.objects.get(pk=c.id)
        assert c.destination == builtin_destination().pk
        assert c.key == str(by_id[c.id].event.key)
        assert c.payload == {"user": user.pk, "action": "create"}
        assert c.attempts == delivery.attempts
        assert delivery.claimed_by == "A"
        assert delivery.available_at >= now + datetime.timedelta(seconds=29)
    assert Delivery.objects.filter(claimed_by="").count() == 2


def test_a_claim_returns_each_deliverys_creation_time_in_unix_seconds(user):
    defect_create(user=user, comment="a")
    created = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
    Delivery.objects.update(created_at=created, available_at=created)

    [claimed] = store.claim(owner="A", limits=builtin(10), lease=60)

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

    claimed = store.claim(owner="A", limits=builtin(500), lease=60)

    assert [c.payload for c in claimed] == payloads
    assert all(type(c.body) is str for c in claimed)
    assert Delivery.objects.filter(claimed_by="A").count() == 500


def test_a_claim_returns_the_events_envelope_as_its_json_text_or_none():
    envelope = {"type": "defect.created", "note": "é 中"}
    events_enqueue(payloads=[{"user": 1, "action": "create"}] * 2, action="create",
                   envelopes=[envelope, None])  # fmt: skip

    with_envelope, without = store.claim(owner="A", limits=builtin(10), lease=60)

    assert type(with_envelope.envelope) is str
    assert json.loads(with_envelope.envelope) == envelope
    assert without.envelope is None


def test_concurrent_claims_never_overlap_nor_exceed_their_limit(user):
    from defect.models import Defect

    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(50)])
    limits = builtin(10)
    start = threading.Barrier(4)
    claims: dict[str, list[int]] = {}

    def claimer(owner: str) -> None:
        try:
            start.wait(5)
            claims[owner] = [c.id for c in store.claim(owner=owner, limits=limits, lease=60)]
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
        claimed = Delivery.objects.filter(claimed_by=owner).values_list("id", flat=True)
        assert set(claimed) == set(ids)


def test_a_stale_owner_cannot_undo_a_delivery(user):
    defect_create(user=user, comment="a")
    (claimed,) = store.claim(owner="A", limits=builtin(10), lease=0)
    (again,) = store.claim(owner="B", limits=builtin(10), lease=60)
    store.record(owner="B", outcomes=[(again, DELIVERED)])
    store.record(owner="A", outcomes=[(claimed, Decision(Verdict.RETRY, delay=5.0, error="late"))])
    assert counter_deliveries().get().status == Status.DELIVERED


def test_release_makes_claims_due_at_once(user):
    defect_create(user=user, comment="a")
    store.claim(owner="A", limits=builtin(10), lease=60)
    assert store.release(owner="A") == 1
    assert len(store.claim(owner="B", limits=builtin(10), lease=60)) == 1


def test_exchange_records_outcomes_and_claims_the_next_deliveries(user):
    defect_create(user=user, comment="a")
    (first,) = store.claim(owner="A", limits=builtin(1), lease=60)
    defect_create(user=user, comment="b")
    claimed = store.exchange(owner="A", outcomes=[(first, DELIVERED)], limits=builtin(10),
                             lease=60)  # fmt: skip
    assert Delivery.objects.get(pk=first.id).status == Status.DELIVERED
    assert [c.id for c in claimed] == list(Delivery.objects.pending().values_list("id", flat=True))


def test_exchange_never_claims_back_a_delivery_it_records_as_delivered(user):
    """Its lease ran out, so it is due again: the round marks it delivered and leaves it
    out of the claim (on PostgreSQL the two are one statement, which must not update a
    row twice)."""
    defect_create(user=user, comment="a")
    (claimed,) = store.claim(owner="A", limits=builtin(10), lease=0)  # due again at once
    defect_create(user=user, comment="b")
    again = store.exchange(owner="A", outcomes=[(claimed, DELIVERED)], limits=builtin(10),
                           lease=60)  # fmt: skip
    delivery = Delivery.objects.get(pk=claimed.id)
    assert (delivery.status, delivery.attempts, delivery.claimed_by) == (Status.DELIVERED, 1, "")
    assert [c.id for c in again] == list(Delivery.objects.pending().values_list("id", flat=True))


def test_exchange_records_its_deliveries_when_nothing_is_due(user):
    """On PostgreSQL the claim reads the deliveries' CTE only for rows it considers:
    with nothing due, they are recorded all the same."""
    defect_create(user=user, comment="a")
    (claimed,) = store.claim(owner="A", limits=builtin(10), lease=60)
    again = store.exchange(owner="A", outcomes=[(claimed, DELIVERED)], limits=builtin(10),
                           lease=60)  # fmt: skip
    assert again == []
    delivery = Delivery.objects.get(pk=claimed.id)
    assert (delivery.status, delivery.attempts, delivery.claimed_by) == (Status.DELIVERED, 1, "")


def test_exchange_records_retries_and_deliveries_and_claims_in_one_round(user):
    defect_create(user=user, comment="a")
    defect_create(user=user, comment="b")
    first, second = store.claim(owner="A", limits=builtin(10), lease=60)
    defect_create(user=user, comment="c")
    now = timezone.now()
    retry = Decision(Verdict.RETRY, delay=30.0, error="HTTP 503")
    claimed = store.exchange(
        owner="A", outcomes=[(first, DELIVERED), (second, retry)],
        limits=builtin(10), lease=60, now=now,
    )  # fmt: skip
    assert Delivery.objects.get(pk=first.id).status == Status.DELIVERED
    retried = Delivery.objects.get(pk=second.id)
    assert (retried.status, retried.attempts, retried.last_error) == (Status.PENDING, 1, "HTTP 503")
    assert retried.available_at == now + datetime.timedelta(seconds=30)
    assert [c.id for c in claimed] == [Delivery.objects.latest("id").pk]


def test_exchange_writes_each_decision_as_the_policy_made_it(user):
    """The status and the delay are the decision's: a failure for good is failed whatever
    the answer was, and a retry is due exactly when the decision says, 0 s included."""
    for comment in "abc":
        defect_create(user=user, comment=comment)
    failed, retried, due_now = store.claim(owner="A", limits=builtin(10), lease=60)
    now = timezone.now()
    store.exchange(
        owner="A", limits={}, lease=60, now=now,
        outcomes=[(failed, Decision(Verdict.FAILED, error="HTTP 422: unknown user")),
                  (retried, Decision(Verdict.RETRY, delay=12.5, error="timed out")),
                  (due_now, Decision(Verdict.RETRY, delay=0.0, error="HTTP 500"))],
    )  # fmt: skip
    rows = {d.pk: d for d in Delivery.objects.all()}
    assert (rows[failed.id].status, rows[failed.id].last_error) == (
        Status.FAILED, "HTTP 422: unknown user")  # fmt: skip
    assert rows[retried.id].status == Status.PENDING
    assert rows[retried.id].available_at == now + datetime.timedelta(seconds=12.5)
    assert (rows[due_now.id].status, rows[due_now.id].available_at) == (Status.PENDING, now)
    assert {(d.attempts, d.claimed_by) for d in rows.values()} == {(1, "")}


@pytest.mark.parametrize("limits", [{}, "zero"])
def test_an_exchange_that_claims_nothing_still_records_every_outcome(user, limits):
    """A round with no claim (the breaker open, the broadcast paused) records its
    retries in a transaction on every database (they lock the rows they update)."""
    defect_create(user=user, comment="a")
    defect_create(user=user, comment="b")
    first, second = store.claim(owner="A", limits=builtin(10), lease=60)
    defect_create(user=user, comment="c")
    retry = Decision(Verdict.RETRY, delay=30.0, error="ConnectError: refused")
    claimed = store.exchange(
        owner="A", outcomes=[(first, DELIVERED), (second, retry)],
        limits=builtin(0) if limits == "zero" else limits, lease=60,
    )  # fmt: skip
    assert claimed == []
    assert Delivery.objects.get(pk=first.id).status == Status.DELIVERED
    retried = Delivery.objects.get(pk=second.id)
    assert (retried.status, retried.attempts, retried.claimed_by) == (Status.PENDING, 1, "")
    assert Delivery.objects.pending().filter(claimed_by="", attempts=0).count() == 1


# --- Per destination -----------------------------------------------------------------


@pytest.fixture
def three_destinations(user):
    """The built-in destination "a" and two more, "b" and "c", each with one delivery of
    each of five events, due in an order of their own (one not due yet)."""
    a = builtin_destination()
    b, _ = destination_create(name="b", url="http://127.0.0.1:9/")
    c, _ = destination_create(name="c", url="http://127.0.0.1:9/")
    for i in range(5):
        defect_create(user=user, comment=str(i))
    now = timezone.now()
    ages = {a: [1, 2, 3, 4, -60], b: [4, 3, 2, 1, -60], c: [5, 4, 3, 2, 1]}
    for destination, destination_ages in ages.items():
        deliveries = Delivery.objects.filter(destination=destination).order_by("id")
        for age, delivery in zip(destination_ages, deliveries, strict=True):
            Delivery.objects.filter(pk=delivery.pk).update(
                available_at=now - datetime.timedelta(seconds=age)
            )
    return a, b, c, now


def oldest(destination, count: int, now) -> list[int]:
    """The ids of `destination`'s `count` longest waiting due deliveries, as `due()` says."""
    due = Delivery.objects.due(now, destination=destination)
    return list(due.values_list("id", flat=True)[:count])


def test_a_claim_takes_up_to_each_destinations_limit_oldest_first(three_destinations):
    a, b, c, now = three_destinations
    expected = {a.pk: sorted(oldest(a, 2, now)), b.pk: oldest(b, 1, now)}

    claimed = store.claim(owner="A", limits={a.pk: 2, b.pk: 1}, lease=60, now=now)

    by_destination: dict[int, list[int]] = {}
    for item in claimed:
        by_destination.setdefault(item.destination, []).append(item.id)
    assert by_destination == expected
    # The oldest are not the lowest ids: a's two oldest are its 4th and 3rd deliveries,
    # b's its first.
    a_ids = list(Delivery.objects.filter(destination=a).order_by("id").values_list("id", flat=True))
    b_ids = list(Delivery.objects.filter(destination=b).order_by("id").values_list("id", flat=True))
    assert set(by_destination[a.pk]) == {a_ids[3], a_ids[2]}
    assert by_destination[b.pk] == [b_ids[0]]
    for item in claimed:
        delivery = Delivery.objects.select_related("event").get(pk=item.id)
        assert (item.destination, item.key) == (delivery.destination_id, str(delivery.event.key))
    # Nothing of c, which is not in the limits, though all of its deliveries are due.
    assert not Delivery.objects.filter(destination=c).exclude(claimed_by="").exists()
    assert Delivery.objects.filter(claimed_by="A").count() == 3


def test_a_destination_with_a_limit_of_zero_gets_nothing_claimed(three_destinations):
    a, b, c, now = three_destinations
    expected = oldest(b, 10, now)

    claimed = store.claim(owner="A", limits={a.pk: 0, b.pk: 10, c.pk: 0}, lease=60, now=now)

    assert {item.destination for item in claimed} == {b.pk}
    assert sorted(item.id for item in claimed) == sorted(expected)
    assert store.claim(owner="A", limits={a.pk: 0, c.pk: 0}, lease=60, now=now) == []


def test_an_exchange_claims_per_destination_as_a_claim_does(three_destinations):
    a, b, c, now = three_destinations
    (first,) = store.claim(owner="A", limits={c.pk: 1}, lease=60, now=now)
    expected = oldest(a, 1, now) + oldest(b, 2, now)

    claimed = store.exchange(owner="A", outcomes=[(first, DELIVERED)],
                             limits={a.pk: 1, b.pk: 2}, lease=60, now=now)  # fmt: skip

    assert Delivery.objects.get(pk=first.id).status == Status.DELIVERED
    assert sorted(item.id for item in claimed) == sorted(expected)
    assert set(Delivery.objects.filter(claimed_by="A").values_list("id", flat=True)) == set(
        expected
    )
