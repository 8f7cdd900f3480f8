"""Destinations isolated from each other, end to end: a real dispatcher process, real Deno
counter servers as the healthy destinations, and a faulty one beside them.

The faulty destination is down (a port nothing listens on), slow (a scripted
server that answers after 40 s, which the dispatcher waits for up to 30 s: no
request of it ends, and none starts again, while the test runs), overloaded
(429 with `Retry-After: 60`) or gone (410). Each fault's own time
is seconds to a minute; a healthy destination beside it must get every event
within PROMPT of its commit, whether created before the fault showed or after.
"""

import pytest

from broadcast.destinations import destination_create
from broadcast.models import Attempt, Delivery, Destination, Status
from defect.services import defect_create, defect_delete
from tests.broadcast.conftest import Answer, ScriptedServer
from tests.helpers import CounterServer, counter_deliveries, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# A healthy delivery takes milliseconds; the faults' own times are 1 s (the breaker's
# probes) to 60 s (the Retry-After). Sharing any of them would show as more than this.
# (The counter server's log stamps whole milliseconds; the lags are far above that.)
PROMPT = 5.0
CONCURRENCY = 4  # two destinations: at most 2 requests in flight to each
FAULTS = {
    "down": None,
    "slow": Answer(delay=40),
    "overloaded": Answer(429, headers={"Retry-After": "60"}),
    "gone": Answer(410),
}


@pytest.fixture
def second_counter(tmp_path):
    """A second real counter server."""
    server = CounterServer(free_port(), tmp_path / "second-counter.log").start()
    yield server
    server.stop()


def creations(*users, count: int) -> dict:
    return {str(user.pk): {"create": count, "delete": 0} for user in users}


def lags(counter: CounterServer) -> list[float]:
    """Each event's seconds from its commit to its count at `counter` (stopped: its log
    is buffered while it runs)."""
    return [
        (counter.arrival(delivery.event.key) - delivery.created_at).total_seconds()
        for delivery in counter_deliveries().select_related("event")
    ]


def test_two_counter_servers_each_count_what_they_subscribe_to(
    counter_server, second_counter, dispatchers, user, other_user
):
    audit, _ = destination_create(name="audit", url=second_counter.url, actions=["create"])
    dispatchers(counter_server.url)
    mine = [defect_create(user=user, comment=f"a{i}") for i in range(3)]
    theirs = [defect_create(user=other_user, comment=f"b{i}") for i in range(2)]
    defect_delete(defect=mine[0])
    defect_delete(defect=theirs[1])

    both = {
        str(user.pk): {"create": 3, "delete": 1},
        str(other_user.pk): {"create": 2, "delete": 1},
    }
    wait_for(lambda: counter_server.counts() == both, timeout=15, message="the built-in's counts")
    wait_for(lambda: second_counter.counts() == creations(user, count=3) | creations(
        other_user, count=2), timeout=15, message="audit's counts: creations only")  # fmt: skip
    # Counted, then recorded by the dispatcher's next round.
    wait_for(lambda: not Delivery.objects.exclude(status=Status.DELIVERED).exists(), timeout=10,
             message="every delivery recorded as delivered")  # fmt: skip
    assert counter_deliveries().count() == 7
    assert Delivery.objects.filter(destination=audit).count() == 5
    assert "duplicate" not in counter_server.final_log()
    assert "duplicate" not in second_counter.final_log()


@pytest.mark.parametrize("fault", FAULTS)
def test_a_faulty_destination_delays_no_other(
    fault, counter_server, scripted_server, dispatchers, user
):
    faulty = scripted_server
    answer = FAULTS[fault]
    url = faulty.url if answer else f"http://127.0.0.1:{free_port()}/"
    faulty.script = [answer] * 100 if answer else []
    planning, _ = destination_create(name="planning", url=url)
    dispatchers(counter_server.url, BROADCAST_CONCURRENCY=str(CONCURRENCY),
                BROADCAST_REQUEST_TIMEOUT="30")  # fmt: skip

    for i in range(10):
        defect_create(user=user, comment=f"before {i}")
    wait_for(lambda: tried(planning, faulty), timeout=10, message="the faulty destination tried")
    for i in range(10):  # while the fault holds its lane: open breaker, hold, busy share
        defect_create(user=user, comment=f"after {i}")

    wait_for(lambda: counter_server.counts() == creations(user, count=20), timeout=30,
             message="every event at the healthy destination")  # fmt: skip
    assert "duplicate" not in counter_server.final_log()  # stopped: its log is whole
    assert max(lags(counter_server)) < PROMPT
    # Nothing reached the faulty destination; it held no more than its share in flight.
    assert not Delivery.objects.filter(destination=planning).delivered().exists()
    assert faulty.most_in_flight <= CONCURRENCY // 2
    if fault == "overloaded":  # held by the Retry-After from its first answers on
        assert len(faulty.received) <= CONCURRENCY // 2
    if fault == "gone":
        planning.refresh_from_db()
        assert not planning.enabled
        assert planning.disabled_reason.startswith("Destination planning answered HTTP 410")


def tried(planning: Destination, faulty: ScriptedServer) -> bool:
    """The faulty destination was sent a request (a refused one is in the attempt log)."""
    return bool(faulty.received) or Attempt.objects.filter(destination=planning).exists()
