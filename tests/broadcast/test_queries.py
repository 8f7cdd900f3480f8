"""broadcast/queries.py: the literal SQL selects exactly what `EventQuerySet.due()` selects."""

import datetime
import sqlite3

import pytest
from django.db import connection
from django.utils import timezone

from broadcast import queries, store
from broadcast.dispatch.policy import DELIVERED
from broadcast.models import Event, Status

pytestmark = pytest.mark.django_db(transaction=True)

NOW = timezone.now()


@pytest.fixture
def events():
    """Events of every status, due in the past, now and later, some at the same time."""
    at = [NOW - datetime.timedelta(seconds=s) for s in (30, 10, 10, 0, -1, -60)]
    for status in (Status.PENDING, Status.DELIVERED, Status.FAILED):
        for available_at in at:
            Event.objects.create(payload={"user": 1, "action": "create"}, status=status,
                                 available_at=available_at)  # fmt: skip
    Event.objects.create(payload={"user": 2}, available_at=NOW - datetime.timedelta(seconds=10))


def due_ids(limit: int = 1000) -> list[int]:
    return list(Event.objects.due(NOW).values_list("id", flat=True)[:limit])


def test_the_statements_name_the_models_table():
    assert Event._meta.db_table == "broadcast_event"


@pytest.mark.parametrize("limit", [1, 3, 1000])
def test_due_selects_what_the_querysets_due_selects_in_its_order(events, limit):
    at = connection.ops.adapt_datetimefield_value(NOW)
    with connection.cursor() as cursor:
        cursor.execute(queries.DUE, [Status.PENDING, at, limit])
        assert [row[0] for row in cursor.fetchall()] == due_ids(limit)


@pytest.mark.parametrize("limit", [1, 3, 1000])
def test_a_claim_takes_the_first_due_events_and_nothing_else(events, limit):
    expected = due_ids(limit)
    claimed = store.claim(owner="A", limit=limit, lease=60, now=NOW)
    assert sorted(c.id for c in claimed) == sorted(expected)
    assert set(Event.objects.filter(claimed_by="A").values_list("id", flat=True)) == set(expected)


def test_a_rounds_claim_beside_its_deliveries_takes_the_same_events(events):
    """The delivered event's lease has run out (it is due again): left out of the claim."""
    (first,) = store.claim(owner="A", limit=1, lease=0, now=NOW)
    expected = [i for i in due_ids() if i != first.id]
    claimed = store.exchange(owner="A", outcomes=[(first, DELIVERED)], limit=1000, lease=60,
                             now=NOW)  # fmt: skip
    assert sorted(c.id for c in claimed) == sorted(expected)


@pytest.mark.sqlite
def test_the_probe_asks_what_due_asks(events):
    probe = sqlite3.connect(connection.settings_dict["NAME"])
    try:
        pending = Status.PENDING
        at = connection.ops.adapt_datetimefield_value
        assert probe.execute(queries.SQLITE_PROBE, (pending, at(NOW))).fetchone() is not None
        earliest = NOW - datetime.timedelta(seconds=31)
        assert probe.execute(queries.SQLITE_PROBE, (pending, at(earliest))).fetchone() is None
        assert not Event.objects.due(earliest).exists()
    finally:
        probe.close()
