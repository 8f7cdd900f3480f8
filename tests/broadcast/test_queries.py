"""broadcast/queries.py: the literal SQL selects exactly what `DeliveryQuerySet.due()` selects,
per destination."""

import datetime
import itertools
import json
import sqlite3

import pytest
from django.db import connection
from django.utils import timezone

from broadcast import queries, store
from broadcast.destinations import destination_create
from broadcast.dispatch.policy import DELIVERED
from broadcast.models import Attempt, Delivery, Destination, Event, Status
from tests.helpers import builtin_destination

pytestmark = pytest.mark.django_db(transaction=True)

NOW = timezone.now()
# Seconds before NOW: due in the past, now and later, some at the same time.
AGES = (30, 10, 10, 0, -1, -60)
SLOTS = [(status, age) for status in (Status.PENDING, Status.DELIVERED, Status.FAILED)
         for age in AGES]  # fmt: skip


@pytest.fixture
def destinations():
    """The built-in destination and two more, "b" and "c"."""
    made = [destination_create(name=name, url="http://127.0.0.1:9/")[0] for name in "bc"]
    return [builtin_destination(), *made]


@pytest.fixture
def deliveries(destinations):
    """Deliveries of every status to each destination, due in the past, now and later, some at
    the same time; each event's delivery is in a state of its own at each destination, so that
    each destination's order differs from the ids' and from the others'."""
    for n in range(len(SLOTS)):
        event = Event.objects.create(payload={"user": 1, "action": "create"})
        for shift, destination in enumerate(destinations):
            status, age = SLOTS[(n + 7 * shift) % len(SLOTS)]
            Delivery.objects.create(event=event, destination=destination, status=status,
                                    available_at=NOW - datetime.timedelta(seconds=age))  # fmt: skip
    late = Event.objects.create(payload={"user": 2})
    for destination in destinations:
        Delivery.objects.create(event=late, destination=destination,
                                available_at=NOW - datetime.timedelta(seconds=10))  # fmt: skip
    return destinations


def due_ids(destination: Destination, limit: int = 1000) -> list[int]:
    due = Delivery.objects.due(NOW, destination=destination)
    return list(due.values_list("id", flat=True)[:limit])


def claimed_by(owner: str, destination: Destination) -> set[int]:
    mine = Delivery.objects.filter(claimed_by=owner, destination=destination)
    return set(mine.values_list("id", flat=True))


def test_the_statements_name_the_models_tables():
    assert Delivery._meta.db_table == "broadcast_delivery"
    assert Event._meta.db_table == "broadcast_event"
    assert Destination._meta.db_table == "broadcast_destination"
    assert Attempt._meta.db_table == "broadcast_attempt"


def test_each_destination_has_its_own_order(deliveries):
    """The fixture means something: orders that differ, not the ids' order."""
    orders = [due_ids(destination) for destination in deliveries]
    positions = [[Delivery.objects.get(pk=i).event_id for i in order] for order in orders]
    assert all(len(order) == 5 for order in orders)  # four pending due, and the late one
    assert len({tuple(events) for events in positions}) == 3
    assert any(order != sorted(order) for order in orders)


@pytest.mark.parametrize("limit", [1, 3, 1000])
def test_due_selects_what_the_querysets_due_selects_in_its_order(deliveries, limit):
    at = connection.ops.adapt_datetimefield_value(NOW)
    for destination in deliveries:
        with connection.cursor() as cursor:
            cursor.execute(queries.DUE, [destination.pk, Status.PENDING, at, limit])
            assert [row[0] for row in cursor.fetchall()] == due_ids(destination, limit)


@pytest.mark.parametrize("limit_a, limit_b", [(1, 3), (3, 1), (2, 2), (1000, 1000)])
def test_a_claim_takes_each_destinations_first_due_deliveries_and_nothing_else(
    deliveries, limit_a, limit_b
):
    """On SQLite `sqlite_claim(2)`, on PostgreSQL `POSTGRESQL_CLAIM`; "c" has no limit."""
    a, b, c = deliveries
    expected = {a: due_ids(a, limit_a), b: due_ids(b, limit_b), c: []}

    claimed = store.claim(owner="A", limits={a.pk: limit_a, b.pk: limit_b}, lease=60, now=NOW)

    assert sorted(item.id for item in claimed) == sorted(expected[a] + expected[b])
    for destination, ids in expected.items():
        assert claimed_by("A", destination) == set(ids)
        assert {item.id for item in claimed if item.destination == destination.pk} == set(ids)


@pytest.mark.sqlite
@pytest.mark.parametrize("count", [1, 2, 3])
def test_the_sqlite_claim_for_n_destinations_takes_what_due_selects_for_each(deliveries, count):
    chosen, limit = deliveries[:count], 2
    expected = {destination: due_ids(destination, limit) for destination in chosen}
    adapt = connection.ops.adapt_datetimefield_value
    due = [(destination.pk, Status.PENDING, adapt(NOW), limit) for destination in chosen]

    with connection.cursor() as cursor:
        cursor.execute(
            queries.sqlite_claim(count),
            [adapt(NOW + datetime.timedelta(seconds=60)), "A", *itertools.chain(*due)],
        )
        rows = cursor.fetchall()

    returned = {(row[0], row[1]) for row in rows}
    assert returned == {(i, d.pk) for d, ids in expected.items() for i in ids}
    for destination in deliveries:
        assert claimed_by("A", destination) == set(expected.get(destination, []))
    for row in rows:
        delivery = Delivery.objects.select_related("event").get(pk=row[0])
        assert row[2] == delivery.event.key.hex
        assert json.loads(row[3]) == delivery.event.payload


def test_a_rounds_claim_beside_its_deliveries_takes_the_same_deliveries(deliveries):
    """The delivered delivery's lease has run out (it is due again): left out of the claim."""
    a, b, c = deliveries
    (first,) = store.claim(owner="A", limits={a.pk: 1}, lease=0, now=NOW)
    expected = {a: [i for i in due_ids(a) if i != first.id], b: due_ids(b), c: []}

    claimed = store.exchange(owner="A", outcomes=[(first, DELIVERED)],
                             limits={a.pk: 1000, b.pk: 1000}, lease=60, now=NOW)  # fmt: skip

    assert sorted(item.id for item in claimed) == sorted(expected[a] + expected[b])
    for destination, ids in expected.items():
        assert claimed_by("A", destination) == set(ids)
    assert Delivery.objects.get(pk=first.id).status == Status.DELIVERED


@pytest.mark.sqlite
@pytest.mark.parametrize("asker", ["the probe", "the idle claim"])
def test_anything_due_asks_what_due_asks(deliveries, asker):
    """SQLITE_PROBE on the probe's own sqlite3 connection, SQLITE_DUE_TO_ANY on Django's."""
    empty, _ = destination_create(name="empty", url="http://127.0.0.1:9/")
    at = connection.ops.adapt_datetimefield_value
    probe = sqlite3.connect(connection.settings_dict["NAME"])

    def asked(destinations: list[Destination], now: datetime.datetime) -> bool:
        ids = json.dumps([destination.pk for destination in destinations])
        if asker == "the probe":
            row = probe.execute(queries.SQLITE_PROBE, (ids, Status.PENDING, at(now))).fetchone()
        else:
            with connection.cursor() as cursor:
                cursor.execute(queries.SQLITE_DUE_TO_ANY, [ids, Status.PENDING, at(now)])
                row = cursor.fetchone()
        return row is not None

    try:
        earliest = NOW - datetime.timedelta(seconds=31)
        for destination in [*deliveries, empty]:
            for now in (NOW, earliest):
                due = Delivery.objects.due(now, destination=destination).exists()
                assert asked([destination], now) is due
        assert asked([empty], NOW) is False
        assert asked([empty, deliveries[1]], NOW) is True
        assert asked(deliveries, earliest) is False
        assert asked([], NOW) is False
        assert not Delivery.objects.due(earliest).exists()
    finally:
        probe.close()
