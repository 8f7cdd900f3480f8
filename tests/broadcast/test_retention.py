"""Retention: only delivered events past the age go, batch by batch."""

import datetime
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from broadcast.models import Event, Status
from broadcast.retention import prune_delivered, retention_days

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
PAYLOAD = {"user": 1, "action": "create"}


def make(status: str, *, age_days: float, count: int = 1) -> list[int]:
    when = NOW - datetime.timedelta(days=age_days)
    return [
        Event.objects.create(
            payload=PAYLOAD,
            status=status,
            created_at=when,
            available_at=when,
            delivered_at=when if status == Status.DELIVERED else None,
        ).pk
        for _ in range(count)
    ]


def remaining() -> set[int]:
    return set(Event.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_only_delivered_events_older_than_the_age_are_deleted():
    old_delivered = make(Status.DELIVERED, age_days=8, count=3)
    kept = (
        make(Status.DELIVERED, age_days=6.9)
        + make(Status.PENDING, age_days=400)
        + make(Status.FAILED, age_days=400)
    )

    assert prune_delivered(days=7, now=NOW) == len(old_delivered)
    assert remaining() == set(kept)


@pytest.mark.django_db
def test_pending_and_failed_events_stay_whatever_their_age():
    kept = make(Status.PENDING, age_days=10_000) + make(Status.FAILED, age_days=10_000)
    # A pending event with a delivered_at (a re-delivery in flight) stays too.
    Event.objects.filter(pk=kept[0]).update(delivered_at=NOW - datetime.timedelta(days=10_000))

    assert prune_delivered(days=0.001, now=NOW) == 0
    assert remaining() == set(kept)


@pytest.mark.django_db
@pytest.mark.parametrize("days", [0, -1])
def test_zero_or_negative_days_delete_nothing(days):
    kept = make(Status.DELIVERED, age_days=365)
    assert prune_delivered(days=days, now=NOW) == 0
    assert remaining() == set(kept)


@pytest.mark.django_db
def test_deletes_in_batches_of_at_most_batch_size():
    make(Status.DELIVERED, age_days=30, count=5)
    kept = make(Status.FAILED, age_days=30)

    with CaptureQueriesContext(connection) as queries:
        assert prune_delivered(days=7, batch_size=2, now=NOW) == 5

    deletes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("DELETE")]
    events = [sql for sql in deletes if '"broadcast_event"' in sql]
    assert len(events) == 3  # 2 + 2 + 1, each with its deliveries
    assert remaining() == set(kept)


@pytest.mark.django_db
def test_each_batch_is_its_own_transaction(monkeypatch):
    import broadcast.retention

    make(Status.DELIVERED, age_days=30, count=5)
    opened = []

    def counting_atomic(*args, **kwargs):
        opened.append(kwargs.get("using"))
        return transaction.atomic(*args, **kwargs)

    # Only the retention module's view of `transaction` is replaced, not Django's.
    monkeypatch.setattr(broadcast.retention, "transaction", SimpleNamespace(atomic=counting_atomic))
    prune_delivered(days=7, batch_size=2, now=NOW)
    assert opened == ["default"] * 3  # 2 + 2 + 1: the short batch ends it


@pytest.mark.django_db
def test_a_bad_batch_size_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        prune_delivered(days=7, batch_size=0)


def test_retention_days_reads_the_setting(settings):
    settings.BROADCAST = {**settings.BROADCAST, "RETENTION_DAYS": 2.5}
    assert retention_days() == 2.5


@pytest.mark.django_db
def test_broadcast_prune_defaults_to_the_setting(settings, capsys):
    settings.BROADCAST = {**settings.BROADCAST, "RETENTION_DAYS": 3}
    old = make(Status.DELIVERED, age_days=0, count=2)
    Event.objects.filter(pk__in=old).update(
        delivered_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=4)
    )
    recent = make(Status.DELIVERED, age_days=0)
    Event.objects.filter(pk__in=recent).update(delivered_at=datetime.datetime.now(datetime.UTC))

    call_command("broadcast_prune", batch_size=1)

    assert capsys.readouterr().out.startswith("Deleted 2 delivered event(s) older than 3 day(s).")
    assert remaining() == set(recent)


@pytest.mark.django_db
def test_an_events_deliveries_go_with_it_and_only_events_are_counted():
    from broadcast.models import Delivery, Destination

    old = make(Status.DELIVERED, age_days=30, count=2)
    kept = make(Status.PENDING, age_days=30)
    destinations = [
        Destination.objects.create(name=f"d{n}", url="http://example.com/") for n in range(2)
    ]
    Delivery.objects.bulk_create(
        Delivery(event_id=event, destination=destination)
        for event in old + kept
        for destination in destinations
    )

    assert prune_delivered(days=7, now=NOW) == 2
    assert set(Delivery.objects.values_list("event_id", flat=True)) == set(kept)
