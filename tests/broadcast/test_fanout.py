"""The fan-out: an event gets one delivery per enabled destination subscribed to its action,
in its own transaction, for one statement more whatever the number of destinations."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from broadcast.models import Delivery, Destination, Event, Status
from broadcast.services import event_enqueue, events_enqueue

pytestmark = pytest.mark.django_db

PAYLOAD = {"user": 1, "action": "create"}


@pytest.fixture
def no_destinations():
    """Not even the built-in one (COUNTER_SERVER_URL's, made after migrate)."""
    Destination.objects.all().delete()


def destination(name: str, *, create: bool = True, delete: bool = True, **fields) -> Destination:
    return Destination.objects.create(
        name=name, url=f"http://{name}.example/", on_create=create, on_delete=delete, **fields
    )


def delivered_to(event: Event) -> set[str]:
    return set(Delivery.objects.filter(event=event).values_list("destination__name", flat=True))


@pytest.fixture
def destinations(no_destinations):
    """One of each kind: both actions, one only, disabled, paused."""
    return [
        destination("both"),
        destination("creations", delete=False),
        destination("deletions", create=False),
        destination("disabled", enabled=False, disabled_reason="410 Gone"),
        destination("paused", paused=True, paused_reason="maintenance"),
    ]


def test_an_event_goes_to_each_enabled_destination_subscribed_to_its_action(destinations):
    created = event_enqueue(payload=PAYLOAD, action="create")
    deleted = event_enqueue(payload={"user": 1, "action": "delete"}, action="delete")

    assert delivered_to(created) == {"both", "creations", "paused"}
    assert delivered_to(deleted) == {"both", "deletions", "paused"}


def test_a_bulk_of_events_goes_to_the_same_destinations(destinations):
    events = events_enqueue(payloads=[PAYLOAD] * 3, action="create")

    for event in events:
        assert delivered_to(event) == {"both", "creations", "paused"}
    assert Delivery.objects.count() == 9


def test_a_delivery_starts_pending_with_the_events_times(destinations):
    event = event_enqueue(payload=PAYLOAD, action="create", subject=42)
    (bulk,) = events_enqueue(payloads=[PAYLOAD], action="create")

    for source in (event, bulk):
        source.refresh_from_db()
        for delivery in Delivery.objects.filter(event=source):
            assert delivery.status == Status.PENDING
            assert (delivery.attempts, delivery.claimed_by, delivery.last_error) == (0, "", "")
            assert delivery.delivered_at is None
            # Due at once: when its event was created.
            assert delivery.available_at == source.created_at
            assert delivery.created_at == source.created_at


def test_a_destination_added_later_gets_only_the_later_events(no_destinations):
    destination("first")
    before = event_enqueue(payload=PAYLOAD, action="create")
    destination("second")
    after = event_enqueue(payload=PAYLOAD, action="create")

    assert delivered_to(before) == {"first"}
    assert delivered_to(after) == {"first", "second"}


def test_a_destination_disabled_or_removed_gets_nothing_new(no_destinations):
    destination("kept")
    disabled, removed = destination("disabled"), destination("removed")
    before = event_enqueue(payload=PAYLOAD, action="create")
    Destination.objects.filter(pk=disabled.pk).update(enabled=False)
    removed.delete()
    after = event_enqueue(payload=PAYLOAD, action="create")

    assert delivered_to(before) == {"kept", "disabled"}
    assert delivered_to(after) == {"kept"}
    assert Delivery.objects.filter(destination=disabled).count() == 1  # kept, pending


def test_a_rollback_writes_neither_the_event_nor_its_deliveries(destinations):
    with pytest.raises(RuntimeError), transaction.atomic():
        event_enqueue(payload=PAYLOAD, action="create")
        events_enqueue(payloads=[PAYLOAD] * 2, action="create")
        assert Delivery.objects.count() == 9
        raise RuntimeError("roll back")

    assert not Event.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("count", [0, 1, 5])
def test_enqueuing_costs_one_statement_more_whatever_the_number_of_destinations(
    no_destinations, count
):
    for n in range(count):
        destination(f"d{n}")

    with CaptureQueriesContext(connection) as one:
        event_enqueue(payload=PAYLOAD, action="create")
    with CaptureQueriesContext(connection) as many:
        events_enqueue(payloads=[PAYLOAD] * 3, action="create")

    for captured in (one, many):
        statements = [q["sql"].split("(")[0].strip() for q in captured.captured_queries]
        assert statements == [
            'INSERT INTO "broadcast_event"',
            "INSERT INTO broadcast_delivery",
        ]
    assert Delivery.objects.count() == 4 * count


@pytest.mark.parametrize("action", ["create", "delete"])
def test_the_fan_outs_sql_selects_what_subscribed_selects(no_destinations, action):
    """Every combination of enabled, paused and the two subscriptions."""
    for enabled in (True, False):
        for paused in (True, False):
            for create, delete in ((True, True), (True, False), (False, True)):
                name = f"{enabled}-{paused}-{create}-{delete}"
                destination(name, create=create, delete=delete, enabled=enabled, paused=paused)
    expected = set(Destination.objects.subscribed(action).values_list("name", flat=True))
    assert expected  # the comparison means something

    one = event_enqueue(payload=PAYLOAD, action=action)
    (bulk,) = events_enqueue(payloads=[PAYLOAD], action=action)

    assert delivered_to(one) == delivered_to(bulk) == expected


def test_an_unknown_action_is_refused_before_anything_is_written(destinations):
    with pytest.raises(ValueError, match="update"):
        event_enqueue(payload=PAYLOAD, action="update")
    with pytest.raises(ValueError, match="update"):
        events_enqueue(payloads=[PAYLOAD], action="update")
    assert not Event.objects.exists()


def test_envelopes_and_subjects_go_with_their_payloads(no_destinations):
    envelopes = [{"type": "defect.created", "n": n} for n in range(2)]
    events = events_enqueue(
        payloads=[PAYLOAD] * 2, action="create", envelopes=envelopes, subjects=[7, 8]
    )

    stored = Event.objects.filter(pk__in=[e.pk for e in events]).order_by("id")
    assert [(e.envelope, e.subject) for e in stored] == [(envelopes[0], 7), (envelopes[1], 8)]
    with pytest.raises(ValueError, match="one entry per event"):
        events_enqueue(payloads=[PAYLOAD] * 2, action="create", subjects=[1])
