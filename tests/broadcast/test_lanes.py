"""One dispatcher, two destinations: each has its lane (broadcast/dispatch/lanes.py).

The built-in destination is pointed at `scripted_server` by the dispatcher's
first round (its config's URL); a second destination, made with
`destination_create`, at a second scripted server.
"""

import datetime
import json
import threading
from collections.abc import Iterator

import pytest

from broadcast.destinations import (
    Target,
    destination_create,
    destination_pause,
    destination_resume,
    destination_update,
)
from broadcast.dispatch.lanes import Lane
from broadcast.dispatch.loop import Dispatcher
from broadcast.models import ALERTS_NAME, BUILTIN_NAME, Delivery, Destination, Event, Status
from defect.services import defect_create, defect_delete
from tests.broadcast.conftest import Answer, ScriptedServer, deliver_once, make_config
from tests.helpers import counter_deliveries, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def other_server() -> Iterator[ScriptedServer]:
    """A second scripted server, made as the `scripted_server` fixture makes the first."""
    server = ScriptedServer()
    server.start()
    yield server
    server.stop()


class Running:
    """A dispatcher delivering in a thread of its own until the `with` block ends."""

    def __init__(self, url: str, **overrides) -> None:
        self.dispatcher = Dispatcher(make_config(url, **overrides))
        self.thread = threading.Thread(target=self.dispatcher.run)

    def __enter__(self) -> Dispatcher:
        self.thread.start()
        return self.dispatcher

    def __exit__(self, *exc) -> None:
        self.dispatcher.stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the dispatcher did not stop"


def keys(server: ScriptedServer) -> list[str]:
    return [received.headers["Idempotency-Key"] for received in server.received]


def deliveries_to(destination: Destination):
    return Delivery.objects.filter(destination=destination)


def test_each_destination_receives_every_event_it_subscribes_to_with_the_same_key(
    scripted_server, other_server, user, other_user
):
    creates_only, _ = destination_create(name="audit", url=other_server.url, actions=["create"])
    defect = defect_create(user=user, comment="a")
    defect_create(user=other_user, comment="b")
    defect_delete(defect=defect)
    events = {str(event.key): event.payload for event in Event.objects.all()}
    created = {key for key, payload in events.items() if payload["action"] == "create"}
    assert len(events) == 3 and len(created) == 2

    deliver_once(scripted_server.url)

    # The built-in destination subscribes to both actions, `audit` to create only.
    assert sorted(keys(scripted_server)) == sorted(events)
    assert sorted(keys(other_server)) == sorted(created)
    # The same event under the same key at both, with the same body (both take `counter`'s).
    for server in (scripted_server, other_server):
        for received in server.received:
            assert json.loads(received.body) == events[received.headers["Idempotency-Key"]]
    assert not any(json.loads(r.body)["action"] == "delete" for r in other_server.received)
    assert set(counter_deliveries().values_list("status", "attempts")) == {(Status.DELIVERED, 1)}
    assert set(deliveries_to(creates_only).values_list("status", "attempts")) == {
        (Status.DELIVERED, 1)
    }
    assert deliveries_to(creates_only).count() == 2


def test_an_event_format_destination_receives_the_envelope_of_each_change(
    scripted_server, other_server, user
):
    destination_create(name="feed", url=other_server.url, format="event")
    defect = defect_create(user=user, comment="brake pad worn")
    defect_id, written = defect.pk, defect.timestamp
    stamped = written.isoformat().replace("+00:00", "Z")
    defect_delete(defect=defect)
    created, deleted = Event.objects.order_by("id")

    deliver_once(scripted_server.url)

    received = {r.headers["Idempotency-Key"]: json.loads(r.body) for r in other_server.received}
    assert received.keys() == {str(created.key), str(deleted.key)}
    as_it_was = {"id": defect_id, "user": user.pk, "comment": "brake pad worn",
                 "timestamp": stamped}  # fmt: skip
    for event, kind, after in ((created, "defect.created", written),
                               (deleted, "defect.deleted", created.created_at)):  # fmt: skip
        body = received[str(event.key)]
        assert body == {"type": kind, "timestamp": body["timestamp"], "data": as_it_was}
        # The change's time: read as its event was written.
        assert after <= datetime.datetime.fromisoformat(body["timestamp"]) <= event.created_at
    # The counter format beside it, for the same events.
    assert [json.loads(r.body) for r in scripted_server.received] == [
        {"user": user.pk, "action": "create"},
        {"user": user.pk, "action": "delete"},
    ]


def test_a_410_disables_its_destination_only_and_its_deliveries_wait_for_it(
    scripted_server, other_server, user
):
    gone, _ = destination_create(name="audit", url=other_server.url)
    other_server.script = [Answer(410)]
    for i in range(3):
        defect_create(user=user, comment=str(i))
    # One request in flight per lane: `audit` gets one request before its 410.
    with Running(scripted_server.url, concurrency=2) as dispatcher:
        wait_for(lambda: not Destination.objects.get(pk=gone.pk).enabled, timeout=10,
                 message="the 410 to disable audit")  # fmt: skip
        gone.refresh_from_db()
        assert gone.disabled_reason.startswith("Destination audit answered HTTP 410")
        wait_for(lambda: counter_deliveries().delivered().count() == 3, timeout=10,
                 message="the built-in destination's deliveries")  # fmt: skip
        # The other destination keeps receiving what is created after the 410.
        for i in range(2):
            defect_create(user=user, comment=f"after {i}")
        wait_for(lambda: counter_deliveries().delivered().count() == 5, timeout=10,
                 message="the deliveries created after the 410")  # fmt: skip
        assert not dispatcher.paused
        assert len(other_server.received) == 1
        # audit's deliveries stay pending, the claims its 410 left unsent released; the
        # events created while it was disabled have none to it.
        wait_for(
            lambda: (
                set(deliveries_to(gone).values_list("status", "claimed_by"))
                == {(Status.PENDING, "")}
            ),
            timeout=10,
            message="audit's unsent claims released",
        )
        assert deliveries_to(gone).count() == 3

        destination_update(destination=gone, enabled=True)
        wait_for(lambda: deliveries_to(gone).delivered().count() == 3, timeout=10,
                 message="audit's deliveries once it is enabled again")  # fmt: skip
    assert len(other_server.received) == 4  # the one that got the 410, sent again, and two
    assert len(set(keys(other_server))) == 3
    assert len(scripted_server.received) == 5


def test_a_destination_added_while_a_dispatcher_runs_receives_what_is_created_after_it(
    scripted_server, other_server, user
):
    with Running(scripted_server.url) as dispatcher:
        defect_create(user=user, comment="before")
        wait_for(lambda: counter_deliveries().delivered().count() == 1, timeout=10,
                 message="the first event")  # fmt: skip
        destination_create(name="late", url=other_server.url)
        defect_create(user=user, comment="after")
        # Without a restart: within 2 s (the destinations are read at most once a second).
        wait_for(lambda: len(other_server.received) == 1, timeout=2,
                 message="the event created after the destination")  # fmt: skip
        wait_for(lambda: counter_deliveries().delivered().count() == 2, timeout=10,
                 message="the second event to the built-in destination")  # fmt: skip
        lane = dispatcher.lane("late")
        assert lane is not None and lane.target.url == other_server.url
    after = Event.objects.latest("id")
    assert keys(other_server) == [str(after.key)]  # not the event created before it
    assert len(scripted_server.received) == 2


def test_a_paused_destination_receives_nothing_while_the_other_does(
    scripted_server, other_server, user, caplog
):
    paused, _ = destination_create(name="audit", url=other_server.url)
    with Running(scripted_server.url) as dispatcher:
        defect_create(user=user, comment="before")
        wait_for(lambda: len(other_server.received) == 1, timeout=10, message="audit's first")

        destination_pause(destination=paused, reason="maintenance")
        wait_for(lambda: dispatcher.lane("audit").gates.paused, timeout=5,
                 message="the dispatcher to read the pause")  # fmt: skip
        for i in range(3):
            defect_create(user=user, comment=str(i))
        wait_for(lambda: counter_deliveries().delivered().count() == 4, timeout=10,
                 message="the built-in destination's deliveries")  # fmt: skip
        # One claim serves both lanes: had audit's not been paused, its deliveries of these
        # events would have been claimed by the rounds that claimed the built-in's.
        assert len(other_server.received) == 1
        waiting = deliveries_to(paused).exclude(status=Status.DELIVERED)
        assert set(waiting.values_list("status", "attempts", "claimed_by")) == {
            (Status.PENDING, 0, "")
        }
        assert waiting.count() == 3
        assert "Destination audit paused: claiming and sending nothing" in caplog.text
        assert not dispatcher.paused
        assert not dispatcher.lane(BUILTIN_NAME).gates.paused
    assert len(scripted_server.received) == 4


def test_a_destination_changed_paused_resumed_or_disabled_is_seen_within_2_seconds(
    scripted_server, other_server, user
):
    moved = ScriptedServer()
    moved.start()
    audit, _ = destination_create(name="audit", url=other_server.url)
    try:
        with Running(scripted_server.url) as dispatcher:
            wait_for(lambda: dispatcher.lane("audit") is not None, timeout=10,
                     message="audit's lane")  # fmt: skip
            # Without a restart: the destinations are read at most once a second.
            destination_update(destination=audit, url=moved.url)
            wait_for(lambda: dispatcher.lane("audit").target.url == moved.url, timeout=2,
                     message="audit's new URL")  # fmt: skip
            defect_create(user=user, comment="moved")
            wait_for(lambda: len(moved.received) == 1, timeout=10,
                     message="the event at audit's new URL")  # fmt: skip
            destination_pause(destination=audit, reason="maintenance")
            wait_for(lambda: dispatcher.lane("audit").gates.paused, timeout=2,
                     message="audit paused")  # fmt: skip
            destination_resume(destination=audit)
            wait_for(lambda: not dispatcher.lane("audit").gates.paused, timeout=2,
                     message="audit resumed")  # fmt: skip
            destination_update(destination=audit, enabled=False)
            wait_for(lambda: dispatcher.lane("audit") is None, timeout=2,
                     message="audit's lane gone with its disabling")  # fmt: skip
    finally:
        moved.stop()
    assert not other_server.received  # its old URL: nothing once it changed
    assert len(moved.received) == 1


@pytest.mark.parametrize(
    ("name", "managed", "own", "rate"),
    [
        (BUILTIN_NAME, True, 0.0, 5.0),  # BROADCAST_MAX_RATE
        (BUILTIN_NAME, True, 2.0, 2.0),  # its row's own
        (ALERTS_NAME, True, 0.0, 0.0),  # kept by the settings too, but not rate-limited by them
        ("planning", False, 0.0, 0.0),
    ],
)
def test_broadcast_max_rate_limits_the_built_in_destination_only(name, managed, own, rate):
    target = Target(id=1, name=name, url="http://127.0.0.1:9/", format="counter",
                    max_rate=own, managed=managed)  # fmt: skip
    lane = Lane(target, make_config(target.url, max_rate=5.0))
    assert lane.gates.rate.rate == rate
