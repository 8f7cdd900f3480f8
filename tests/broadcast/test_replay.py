"""Replaying deliveries: requeue_failed, replay (a status choice and a cap), delivery_resend,
and manage.py broadcast_requeue."""

import datetime
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, transaction
from django.utils import timezone

from broadcast.destinations import destination_create
from broadcast.models import Delivery, Destination, Event, Status
from broadcast.replay import TooManyToReplay, delivery_resend, replay, requeue_failed
from tests.helpers import builtin_destination

DAY = datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)
PAYLOAD = {"user": 1, "action": "create"}


def delivery(status: str, created: datetime.datetime, destination: Destination | None = None,
             event: Event | None = None) -> Delivery:  # fmt: skip
    """A delivery in `status` of an event created at `created` (a new one unless `event`), to
    `destination` (the built-in one unless given), after three attempts."""
    if event is None:
        event = Event.objects.create(payload=PAYLOAD, created_at=created)
    return Delivery.objects.create(
        event=event,
        destination=destination or builtin_destination(),
        status=status,
        created_at=created,
        available_at=created,
        attempts=3,
        last_error="HTTP 400: bad" if status == Status.FAILED else "",
        delivered_at=created if status == Status.DELIVERED else None,
    )


@pytest.fixture
def outbox(db):
    """Failed deliveries of events from before, the start of, inside and the end of 30 Nov;
    others in it."""
    hour = datetime.timedelta(hours=1)
    return {
        "before": delivery(Status.FAILED, DAY - hour),
        "start": delivery(Status.FAILED, DAY),
        "inside": delivery(Status.FAILED, DAY + 12 * hour),
        "end": delivery(Status.FAILED, DAY + 24 * hour),
        "pending": delivery(Status.PENDING, DAY + 12 * hour),
        "delivered": delivery(Status.DELIVERED, DAY + 12 * hour),
    }


def statuses(outbox: dict) -> dict[str, str]:
    return {name: Delivery.objects.get(pk=d.pk).status for name, d in outbox.items()}


def test_a_window_includes_its_start_and_excludes_its_end(outbox):
    before = timezone.now()
    count = requeue_failed(since=DAY, until=DAY + datetime.timedelta(days=1))

    assert count == 2
    assert statuses(outbox) == {
        "before": Status.FAILED,
        "start": Status.PENDING,
        "inside": Status.PENDING,
        "end": Status.FAILED,
        "pending": Status.PENDING,
        "delivered": Status.DELIVERED,
    }
    requeued = Delivery.objects.get(pk=outbox["inside"].pk)
    assert before <= requeued.available_at <= timezone.now()  # due now
    assert requeued.attempts == 3 and requeued.last_error == "HTTP 400: bad"
    assert requeued.claimed_by == ""


def test_open_ends(outbox):
    assert requeue_failed(until=DAY) == 1
    assert statuses(outbox)["before"] == Status.PENDING
    assert requeue_failed(since=DAY + datetime.timedelta(hours=13)) == 1
    assert statuses(outbox)["end"] == Status.PENDING
    assert requeue_failed() == 2  # the rest
    assert Delivery.objects.failed().count() == 0


def test_pending_and_delivered_are_untouched(outbox):
    untouched = [Delivery.objects.get(pk=outbox[name].pk) for name in ("pending", "delivered")]
    requeue_failed()
    for was in untouched:
        now = Delivery.objects.get(pk=was.pk)
        assert (now.status, now.available_at, now.delivered_at) == (
            was.status,
            was.available_at,
            was.delivered_at,
        )


def test_dry_run_counts_and_changes_nothing(outbox):
    assert requeue_failed(since=DAY, dry_run=True) == 3
    assert Delivery.objects.failed().count() == 4


def test_a_selection_narrows_it(outbox):
    chosen = Delivery.objects.filter(pk__in=[outbox["before"].pk, outbox["delivered"].pk])
    assert requeue_failed(deliveries=chosen) == 1
    assert statuses(outbox)["before"] == Status.PENDING
    assert Delivery.objects.failed().count() == 3


def test_a_destination_narrows_it_to_its_failed_deliveries(outbox):
    other, _ = destination_create(name="b", url="http://127.0.0.1:9/")
    # The same events failed to b too, and one of them is pending to b.
    to_other = {
        name: delivery(status, outbox[name].created_at, other, outbox[name].event)
        for name, status in [("start", Status.FAILED), ("inside", Status.FAILED),
                             ("end", Status.PENDING)]
    }  # fmt: skip

    assert requeue_failed(destination=other, dry_run=True) == 2
    assert requeue_failed(destination=other) == 2

    assert statuses(to_other) == {name: Status.PENDING for name in to_other}
    # The built-in destination's failed deliveries of the same events are untouched.
    assert statuses(outbox) == {
        "before": Status.FAILED,
        "start": Status.FAILED,
        "inside": Status.FAILED,
        "end": Status.FAILED,
        "pending": Status.PENDING,
        "delivered": Status.DELIVERED,
    }
    # With a window too: only the built-in destination's failed delivery inside it.
    window = {"since": DAY, "until": DAY + datetime.timedelta(hours=1)}
    assert requeue_failed(destination=builtin_destination(), **window) == 1
    assert statuses(outbox)["start"] == Status.PENDING


def test_the_command_prints_the_count_first(outbox, capsys):
    call_command("broadcast_requeue", since="2026-11-30", until="2026-12-01T00:00:00Z")
    out = capsys.readouterr().out
    assert out.startswith(
        "2 failed deliveries re-queued, of events created from 2026-11-30T00:00:00+00:00"
    )
    assert Delivery.objects.failed().count() == 2


def test_the_command_dry_run(outbox, capsys):
    call_command("broadcast_requeue", until="2026-11-30T12:00:00+00:00", dry_run=True)
    out = capsys.readouterr().out
    assert out.startswith("2 failed deliveries would be re-queued (dry run, nothing changed)")
    assert Delivery.objects.failed().count() == 4


def test_a_time_without_offset_is_utc(outbox, capsys):
    call_command("broadcast_requeue", since="2026-11-30T12:00:00")
    assert capsys.readouterr().out.startswith("2 failed")


@pytest.mark.parametrize("option", ["since", "until"])
@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "2026-11-30T25:00:00"])
def test_bad_dates_name_the_option(db, option, value):
    with pytest.raises(CommandError, match=f"--{option}: '{value}' is not an ISO 8601"):
        call_command("broadcast_requeue", **{option: value})


def test_since_must_be_before_until(db):
    with pytest.raises(CommandError, match="--since must be before --until"):
        call_command("broadcast_requeue", since="2026-12-01", until="2026-11-30")


def test_the_command_re_queues_one_destinations_failures(outbox, capsys):
    call_command("broadcast_requeue", destination=builtin_destination().name)
    out = capsys.readouterr().out
    assert out.startswith("4 failed deliveries to counter-server re-queued, of events created at")
    assert Delivery.objects.failed().count() == 0


@pytest.mark.parametrize(
    ("status", "said", "replayed"),
    [("delivered", "1 delivered deliveries", {"delivered"}),
     ("all", "3 failed and delivered deliveries", {"start", "inside", "delivered"})],
)  # fmt: skip
def test_the_command_replays_delivered_or_all_deliveries(outbox, capsys, status, said, replayed):
    call_command("broadcast_requeue", since="2026-11-30", until="2026-12-01", status=status)
    assert capsys.readouterr().out.startswith(f"{said} re-queued, of events created from")
    now_pending = {name for name, state in statuses(outbox).items() if state == Status.PENDING}
    assert now_pending == replayed | {"pending"}


def test_the_command_refuses_an_unknown_status(outbox):
    with pytest.raises(CommandError, match="invalid choice: 'pending'"):
        call_command("broadcast_requeue", "--status", "pending")


def test_the_command_names_an_unknown_destination(outbox):
    with pytest.raises(CommandError, match="No destination is named 'nowhere'"):
        call_command("broadcast_requeue", destination="nowhere")


# --- replay: failed, delivered or both, at most a limit -------------------------------------


def test_replay_of_delivered_ones_sends_them_again_and_clears_delivered_at(outbox):
    before = timezone.now()
    assert replay(status="delivered", since=DAY, dry_run=True) == 1
    assert replay(status="delivered", since=DAY) == 1

    again = Delivery.objects.get(pk=outbox["delivered"].pk)
    assert (again.status, again.delivered_at, again.attempts) == (Status.PENDING, None, 3)
    assert before <= again.available_at <= timezone.now()
    assert Delivery.objects.failed().count() == 4  # the failed ones untouched


def test_replay_of_all_takes_failed_and_delivered_but_never_pending_ones(outbox):
    pending = Delivery.objects.get(pk=outbox["pending"].pk)
    window = {"since": DAY, "until": DAY + datetime.timedelta(days=1)}

    assert replay(status="all", **window) == 3  # start, inside, delivered

    now_pending = {name for name, status in statuses(outbox).items() if status == Status.PENDING}
    assert now_pending == {"start", "inside", "delivered", "pending"}
    assert Delivery.objects.get(pk=pending.pk).available_at == pending.available_at


def test_more_than_the_limit_is_refused_and_changes_nothing(outbox):
    with pytest.raises(
        TooManyToReplay, match=r"4 deliveries match, more than BROADCAST_REPLAY_MAX \(3\)"
    ):
        replay(limit=3)
    with pytest.raises(TooManyToReplay):
        replay(limit=3, dry_run=True)
    assert Delivery.objects.failed().count() == 4

    assert replay(limit=4) == 4  # at the limit: done
    assert Delivery.objects.failed().count() == 0


def test_an_unknown_status_is_refused(outbox):
    with pytest.raises(ValueError, match="pending"):
        replay(status="pending")


# --- delivery_resend: one delivery, whatever its status -------------------------------------


@pytest.mark.parametrize("name", ["delivered", "inside"])
def test_resend_makes_a_delivered_or_failed_delivery_pending_and_due_now(outbox, name):
    before = timezone.now()
    resent = delivery_resend(delivery=outbox[name])

    assert resent == Delivery.objects.get(pk=outbox[name].pk)
    assert (resent.status, resent.delivered_at, resent.claimed_by) == (Status.PENDING, None, "")
    assert before <= resent.available_at <= timezone.now()
    assert resent.attempts == 3 and resent.last_error == outbox[name].last_error


def test_resend_of_a_pending_delivery_makes_it_due_now_unless_a_dispatcher_holds_it(outbox):
    later = timezone.now() + datetime.timedelta(minutes=5)
    waiting = outbox["pending"]
    Delivery.objects.filter(pk=waiting.pk).update(available_at=later)
    assert delivery_resend(delivery=waiting).available_at <= timezone.now()

    # Being sent: its lease is left alone, or it would be sent twice at once.
    Delivery.objects.filter(pk=waiting.pk).update(available_at=later, claimed_by="d1")
    held = delivery_resend(delivery=waiting)
    assert (held.status, held.available_at, held.claimed_by) == (Status.PENDING, later, "d1")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_replay_locks_its_deliveries_in_primary_key_order(user):
    """As a destination's deletion locks them (broadcast/destinations.py): so the two never
    wait on each other in a circle (a deadlock, which PostgreSQL ends by failing one).
    The delivery with the higher key comes first in the table and in the due index."""
    from tests.helpers import DatabaseThread, wait_for, waits_on_a_lock

    later_event = Event.objects.create(payload=PAYLOAD, created_at=DAY)
    first = delivery(Status.FAILED, DAY)
    second = delivery(Status.FAILED, DAY, event=later_event)
    # The first's row moves behind the second's (an update writes a new version at the
    # table's end), and is due after it.
    Delivery.objects.filter(pk=first.pk).update(available_at=DAY + datetime.timedelta(hours=1))
    holding, release = threading.Event(), threading.Event()

    def hold_the_second():
        with transaction.atomic():
            list(Delivery.objects.select_for_update().filter(pk=second.pk).values_list("pk"))
            holding.set()
            release.wait(60)

    holder = DatabaseThread(hold_the_second)
    holder.start()
    assert holding.wait(60)
    replaying = DatabaseThread(lambda: replay(since=DAY - datetime.timedelta(days=1)))
    replaying.start()
    try:
        assert replaying.connected.wait(60)
        wait_for(lambda: waits_on_a_lock(replaying.backend_pid), timeout=60,
                 message="the replay to wait for the second")  # fmt: skip
        # Waiting on the second, it holds the first already: a deletion taking them in
        # the same order waits behind it rather than holding the second against it.
        with pytest.raises(OperationalError), transaction.atomic():
            list(Delivery.objects.select_for_update(nowait=True).filter(pk=first.pk))
    finally:
        release.set()
    holder.result()
    assert replaying.result() == 2
