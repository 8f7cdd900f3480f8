"""Migrations 0006 and 0007: each event's own delivery state moves into a delivery to the
built-in destination, and back again when migrated backwards.

As Django's docs on testing migrations show: MigrationExecutor migrates the test
database back to 0005, rows are written with that migration's historical models,
then it migrates forward (and back), and the rows are read with the models of
where it stands. The test database ends at the latest migrations again.
"""

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("broadcast", "0005_destinations")]
AFTER = [("broadcast", "0007_event_state_in_deliveries")]
STATE = ("status", "available_at", "claimed_by", "attempts", "last_error", "delivered_at")

T = datetime.datetime(2026, 12, 1, 8, 30, tzinfo=datetime.UTC)
MINUTE = datetime.timedelta(minutes=1)

# What each event's own state was at 0005: a pending one held by a dispatcher (its lease
# runs to T + 1 min) after two failed attempts, a failed one, a delivered one.
EVENTS = {
    "pending": {"status": "pending", "available_at": T + MINUTE, "claimed_by": "web-1:42:abc",
                "attempts": 2, "last_error": "HTTP 503", "delivered_at": None},
    "failed": {"status": "failed", "available_at": T + 2 * MINUTE, "claimed_by": "",
               "attempts": 5, "last_error": "HTTP 400: bad body", "delivered_at": None},
    "delivered": {"status": "delivered", "available_at": T, "claimed_by": "",
                  "attempts": 1, "last_error": "", "delivered_at": T + 3 * MINUTE},
}  # fmt: skip


def migrate(targets):
    """Migrate the test database to `targets`; the apps (historical models) there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()  # what is applied now
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_0005():
    """The test database at 0005 (the latest migrations again at the end); its apps."""
    apps = migrate(BEFORE)
    yield apps
    executor = MigrationExecutor(connection)
    migrate(executor.loader.graph.leaf_nodes())


def write_events(apps) -> dict[str, int]:
    """EVENTS, written as 0005 wrote them: {name: the event's id}."""
    Event = apps.get_model("broadcast", "Event")
    created = {}
    for n, (name, state) in enumerate(EVENTS.items()):
        event = Event.objects.create(
            payload={"user": n, "action": "create"}, created_at=T - (n + 1) * MINUTE, **state
        )
        created[name] = event.pk
    return created


def test_each_events_state_moves_into_its_delivery_to_the_built_in_destination_and_back(
    at_0005,
):
    Destination = at_0005.get_model("broadcast", "Destination")
    builtin = Destination.objects.get(managed=True)
    other = Destination.objects.create(name="planning", url="https://planning.example/")
    ids = write_events(at_0005)

    apps = migrate(AFTER)

    Event, Delivery = apps.get_model("broadcast", "Event"), apps.get_model("broadcast", "Delivery")
    assert not {f.name for f in Event._meta.get_fields()} & set(STATE)  # 0007 dropped them
    assert Delivery.objects.count() == len(EVENTS)  # one each, to the built-in destination only
    assert not Delivery.objects.filter(destination_id=other.pk).exists()
    for name, state in EVENTS.items():
        delivery = Delivery.objects.get(event_id=ids[name])
        assert delivery.destination_id == builtin.pk
        assert {field: getattr(delivery, field) for field in STATE} == state, name
        assert delivery.created_at == Event.objects.get(pk=ids[name]).created_at

    apps = migrate(BEFORE)

    Event = apps.get_model("broadcast", "Event")
    for name, state in EVENTS.items():
        event = Event.objects.get(pk=ids[name])
        assert {field: getattr(event, field) for field in STATE} == state, name


def test_without_a_built_in_destination_the_migration_makes_it(at_0005, settings):
    at_0005.get_model("broadcast", "Destination").objects.filter(managed=True).delete()
    ids = write_events(at_0005)

    apps = migrate(AFTER)

    builtin = apps.get_model("broadcast", "Destination").objects.get(managed=True)
    assert (builtin.name, builtin.url, builtin.enabled) == (
        "counter-server", settings.COUNTER_SERVER_URL, True,
    )  # fmt: skip
    Delivery = apps.get_model("broadcast", "Delivery")
    for name, state in EVENTS.items():
        delivery = Delivery.objects.get(event_id=ids[name], destination_id=builtin.pk)
        assert delivery.status == state["status"]
