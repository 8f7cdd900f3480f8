"""Retention: only deliveries delivered past the age go, batch by batch, then the events
past the age that no delivery is left to."""

import datetime
import threading
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from broadcast.models import Attempt, Delivery, Destination, Event, Status
from broadcast.retention import Pruned, prune_delivered, retention_days
from tests.helpers import builtin_destination, counter_deliveries

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
PAYLOAD = {"user": 1, "action": "create"}


def deliver(event: Event, destination: Destination, status: str, when: datetime.datetime):
    """`event`'s delivery to `destination`, in `status` since `when`."""
    return Delivery.objects.create(
        event=event,
        destination=destination,
        status=status,
        created_at=event.created_at,
        available_at=when,
        delivered_at=when if status == Status.DELIVERED else None,
    )


def make(status: str, *, age_days: float, count: int = 1) -> list[int]:
    """`count` events created `age_days` ago, each with its delivery to the built-in
    destination in `status` since then; their ids."""
    when = NOW - datetime.timedelta(days=age_days)
    events = [Event.objects.create(payload=PAYLOAD, created_at=when) for _ in range(count)]
    for event in events:
        deliver(event, builtin_destination(), status, when)
    return [event.pk for event in events]


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

    assert prune_delivered(days=7, now=NOW) == Pruned(deliveries=3, events=len(old_delivered))
    assert remaining() == set(kept)
    assert set(counter_deliveries().values_list("event_id", flat=True)) == set(kept)


@pytest.mark.django_db
def test_pending_and_failed_deliveries_stay_whatever_their_age():
    kept = make(Status.PENDING, age_days=10_000) + make(Status.FAILED, age_days=10_000)
    # A pending delivery with a delivered_at (a re-delivery in flight) stays too.
    counter_deliveries().filter(event_id=kept[0]).update(
        delivered_at=NOW - datetime.timedelta(days=10_000)
    )

    assert prune_delivered(days=0.001, now=NOW) == Pruned()
    assert remaining() == set(kept)
    assert set(counter_deliveries().values_list("event_id", flat=True)) == set(kept)


@pytest.mark.django_db
def test_an_event_a_pending_delivery_still_needs_stays_with_that_delivery():
    """Delivered long ago to one destination, still pending to another."""
    (event_id,) = make(Status.DELIVERED, age_days=30)
    other = Destination.objects.create(name="b", url="http://127.0.0.1:9/")
    pending = deliver(Event.objects.get(pk=event_id), other, Status.PENDING, NOW)

    assert prune_delivered(days=7, now=NOW) == Pruned(deliveries=1)  # the delivered one
    assert remaining() == {event_id}
    assert list(Delivery.objects.values_list("pk", flat=True)) == [pending.pk]
    assert Delivery.objects.get().status == Status.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize("days", [0, -1])
def test_zero_or_negative_days_delete_nothing(days):
    kept = make(Status.DELIVERED, age_days=365)
    assert prune_delivered(days=days, now=NOW) == Pruned()
    assert remaining() == set(kept)
    assert counter_deliveries().count() == 1


def deletes_by_id(captured, table: str) -> list[str]:
    """The captured DELETE statements of `table`'s rows by their ids."""
    deletes = [q["sql"] for q in captured if q["sql"].lstrip().upper().startswith("DELETE")]
    return [sql for sql in deletes if f'"{table}" WHERE "{table}"."id" IN' in sql]


@pytest.mark.django_db
def test_deletes_in_batches_of_at_most_batch_size():
    make(Status.DELIVERED, age_days=30, count=5)
    kept = make(Status.FAILED, age_days=30)

    with CaptureQueriesContext(connection) as queries:
        assert prune_delivered(days=7, batch_size=2, now=NOW) == Pruned(deliveries=5, events=5)

    assert len(deletes_by_id(queries, "broadcast_delivery")) == 3  # 2 + 2 + 1 deliveries
    assert len(deletes_by_id(queries, "broadcast_event")) == 3  # then 2 + 2 + 1 events
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
    # No failed delivery's attempts, then 2 + 2 + 1 deliveries, then 2 + 2 + 1 events:
    # each time the short batch ends it.
    assert opened == ["default"] * 7


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
    now = datetime.datetime.now(datetime.UTC)
    four_days_ago = now - datetime.timedelta(days=4)
    old = make(Status.DELIVERED, age_days=0, count=2)
    Event.objects.filter(pk__in=old).update(created_at=four_days_ago)
    Delivery.objects.filter(event__in=old).update(delivered_at=four_days_ago)
    recent = make(Status.DELIVERED, age_days=0)
    Event.objects.filter(pk__in=recent).update(created_at=now)
    Delivery.objects.filter(event__in=recent).update(delivered_at=now)

    call_command("broadcast_prune", batch_size=1)

    assert capsys.readouterr().out == (
        "Deleted 2 deliveries delivered more than 3 days ago, 2 events no delivery needs any "
        "more and 0 attempts.\n"
    )
    assert remaining() == set(recent)


@pytest.mark.django_db
def test_an_events_deliveries_go_before_it_and_each_is_counted():
    old = make(Status.DELIVERED, age_days=30, count=2)
    kept = make(Status.PENDING, age_days=30)
    destinations = [
        Destination.objects.create(name=f"d{n}", url="http://example.com/") for n in range(2)
    ]
    for event in Event.objects.filter(pk__in=old + kept):
        status = Status.DELIVERED if event.pk in old else Status.PENDING
        for destination in destinations:
            deliver(event, destination, status, event.created_at)

    # Six deliveries delivered and deleted (the counter server's and two more each), and
    # two events.
    assert prune_delivered(days=7, now=NOW) == Pruned(deliveries=6, events=2)
    assert remaining() == set(kept)
    assert set(Delivery.objects.values_list("event_id", flat=True)) == set(kept)
    assert Delivery.objects.count() == 3


def attempt(delivery: Delivery, age_days: float) -> Attempt:
    return Attempt.objects.create(
        delivery=delivery, destination=delivery.destination, number=1, succeeded=False,
        started_at=NOW - datetime.timedelta(days=age_days), duration_ms=5, status_code=500,
    )  # fmt: skip


@pytest.mark.django_db
def test_attempts_go_with_their_delivery_and_a_failed_ones_after_their_own_age():
    delivered_old, delivered_new, pending, failed = (
        counter_deliveries().get(event_id=make(status, age_days=age)[0])
        for status, age in ((Status.DELIVERED, 8), (Status.DELIVERED, 1), (Status.PENDING, 400),
                            (Status.FAILED, 400))
    )  # fmt: skip
    attempt(delivered_old, 8)
    kept = {
        attempt(delivered_new, 1).pk,
        attempt(pending, 400).pk,  # a pending delivery's, whatever its age
        attempt(failed, 29.9).pk,
    }
    attempt(failed, 30.1)

    pruned = prune_delivered(days=7, now=NOW, failed_attempts_days=30)

    # The delivered one's attempt with it, and the failed one's old attempt.
    assert pruned == Pruned(deliveries=1, events=1, attempts=2)
    assert set(Attempt.objects.values_list("pk", flat=True)) == kept
    assert Delivery.objects.filter(pk=failed.pk).exists()  # the failed delivery stays


@pytest.mark.django_db
def test_failed_attempts_are_kept_for_broadcast_failed_retention_days(settings):
    settings.BROADCAST = {**settings.BROADCAST, "FAILED_RETENTION_DAYS": 10}
    failed = counter_deliveries().get(event_id=make(Status.FAILED, age_days=400)[0])
    kept, old = attempt(failed, 9), attempt(failed, 11)
    prune_delivered(days=7, now=NOW)
    assert list(Attempt.objects.values_list("pk", flat=True)) == [kept.pk]
    assert old.pk != kept.pk


def prune_while_held(change, **prune):
    """`prune_delivered(now=NOW, **prune)` while `change()`'s transaction, in another thread
    and connection, is open (its locks held); committed after. The pruning's result.

    A lock timeout on the pruning's connection makes a pruning that waits fail, rather
    than hang with the test."""
    from tests.helpers import DatabaseThread

    holding, release = threading.Event(), threading.Event()

    def change_and_hold():
        with transaction.atomic():
            change()
            holding.set()
            release.wait(60)

    changer = DatabaseThread(change_and_hold)
    changer.start()
    try:
        assert holding.wait(60)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '20s'")
        pruned = prune_delivered(now=NOW, **prune)
    finally:
        release.set()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    changer.result()
    return pruned


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_skips_the_deliveries_a_destination_deletion_holds():
    """A deletion locks its deliveries, then deletes their attempts; a batch that deleted
    those attempts first would wait on it while it waited on the batch's (a deadlock).
    The batch locks its deliveries first, and leaves those another transaction holds."""
    from broadcast.destinations import destination_create, destination_delete

    planning, _ = destination_create(name="planning", url="https://planning.example/")
    when = NOW - datetime.timedelta(days=30)
    event = Event.objects.create(payload=PAYLOAD, created_at=when)
    attempt(deliver(event, planning, Status.DELIVERED, when), 30)
    attempt(deliver(event, builtin_destination(), Status.DELIVERED, when), 30)

    pruned = prune_while_held(lambda: destination_delete(destination=planning),
                              days=7, failed_attempts_days=0)  # fmt: skip
    # The other destination's delivery and its attempt; the event stays for the next.
    assert pruned == Pruned(deliveries=1, events=0, attempts=1)
    assert not Attempt.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failed_delivery_being_resent_keeps_its_old_attempts():
    """The resend commits after the batch read the delivery as failed: the batch skips the
    delivery the resend holds, and the delivery, pending then, keeps its attempts."""
    from broadcast.replay import delivery_resend

    failed = counter_deliveries().get(event_id=make(Status.FAILED, age_days=40)[0])
    old = attempt(failed, 40)

    pruned = prune_while_held(lambda: delivery_resend(delivery=failed),
                              days=7, failed_attempts_days=30)  # fmt: skip
    assert pruned == Pruned(deliveries=0, events=0, attempts=0)
    assert list(Attempt.objects.values_list("pk", flat=True)) == [old.pk]
    assert Delivery.objects.get(pk=failed.pk).status == Status.PENDING
