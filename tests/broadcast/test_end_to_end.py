"""End to end and under faults: the API, real dispatcher processes, the real Deno counter server."""

import signal

import pytest
from rest_framework.test import APIClient

from broadcast.models import Event, Status
from defect.models import Defect
from tests.helpers import (
    CounterServer,
    counter_deliveries,
    free_port,
    stop,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def all_delivered() -> bool:
    """Every event's delivery to the built-in destination (its only one) is delivered."""
    deliveries = counter_deliveries()
    if deliveries.exclude(status=Status.DELIVERED).exists():
        return False
    return deliveries.count() == Event.objects.count()


def test_api_creations_and_deletions_reach_the_counter_server(
    counter_server, dispatchers, user, other_user
):
    dispatchers(counter_server.url)
    alice, bob = api_as(user), api_as(other_user)
    alice_ids = [
        alice.post("/api/defects", {"comment": f"a{i}"}, format="json").data["id"] for i in range(3)
    ]
    bob_ids = [
        bob.post("/api/defects", {"comment": f"b{i}"}, format="json").data["id"] for i in range(2)
    ]
    assert alice.delete(f"/api/defects/{alice_ids[0]}").status_code == 204
    assert bob.delete(f"/api/defects/{bob_ids[1]}").status_code == 204
    assert alice.delete(f"/api/defects/{bob_ids[0]}").status_code == 403  # not hers: no event

    expected = {
        str(user.pk): {"create": 3, "delete": 1},
        str(other_user.pk): {"create": 2, "delete": 1},
    }
    wait_for(lambda: counter_server.counts() == expected, timeout=15, message="the counts")
    wait_for(all_delivered, timeout=5, message="all events marked delivered")
    assert "duplicate" not in counter_server.final_log()


def test_counter_server_down_then_up_loses_nothing(tmp_path, dispatchers, user):
    server = CounterServer(free_port(), tmp_path / "counter.log")
    dispatchers(server.url)
    Defect.objects.bulk_create([Defect(user=user, comment=f"c{i}") for i in range(200)])
    wait_for(
        lambda: counter_deliveries().filter(attempts__gte=1).count() == 200,
        timeout=15,
        message="every event to have failed once",
    )
    assert counter_deliveries().pending().count() == 200

    server.start()
    try:
        wait_for(
            lambda: server.counts() == {str(user.pk): {"create": 200, "delete": 0}},
            timeout=20,
            message="200 creations counted",
        )
        wait_for(all_delivered, timeout=5, message="all events marked delivered")
        assert "duplicate" not in server.final_log()
    finally:
        server.stop()


def test_dispatcher_killed_mid_backlog_loses_nothing(counter_server, dispatchers, user):
    Defect.objects.bulk_create([Defect(user=user, comment=f"k{i}") for i in range(3000)])
    first = dispatchers(
        counter_server.url, BROADCAST_LEASE_SECONDS="2", BROADCAST_REQUEST_TIMEOUT="1"
    )
    wait_for(
        lambda: counter_deliveries().delivered().count() >= 300,
        timeout=20,
        message="a partial drain",
    )
    stop(first, signal.SIGKILL)
    assert counter_deliveries().pending().exists(), "the backlog drained before the kill"
    held_by_the_dead = counter_deliveries().pending().exclude(claimed_by="").count()

    dispatchers(counter_server.url, BROADCAST_LEASE_SECONDS="2", BROADCAST_REQUEST_TIMEOUT="1")
    wait_for(all_delivered, timeout=30, message="the backlog to drain after the restart")
    assert counter_server.counts() == {str(user.pk): {"create": 3000, "delete": 0}}
    # Only events the dead dispatcher held may be sent twice; the key dedupes them.
    assert counter_server.final_log().count("duplicate") <= held_by_the_dead


def test_two_dispatchers_drain_10000_events_each_sent_once(counter_server, dispatchers, user):
    Defect.objects.bulk_create([Defect(user=user, comment=f"t{i}") for i in range(10_000)])
    dispatchers(counter_server.url)
    dispatchers(counter_server.url)
    wait_for(all_delivered, timeout=60, interval=0.2, message="10,000 events delivered")
    assert counter_server.counts() == {str(user.pk): {"create": 10_000, "delete": 0}}
    assert "duplicate" not in counter_server.final_log()


def test_sigterm_stops_cleanly_and_releases_claims(counter_server, dispatchers, user):
    process = dispatchers(counter_server.url)
    Defect.objects.bulk_create([Defect(user=user, comment=f"s{i}") for i in range(2000)])
    wait_for(
        lambda: counter_deliveries().delivered().exists(), timeout=20, message="delivery to start"
    )
    process.send_signal(signal.SIGTERM)  # process managers may signal twice
    assert stop(process, signal.SIGTERM) == 0
    assert not counter_deliveries().pending().exclude(claimed_by="").exists()
