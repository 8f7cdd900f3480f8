"""The dispatcher's operations side: a 410 disables its destination, Retry-After holds, signing,
rate, retention."""

import datetime
import itertools
import re
import signal

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from broadcast import control, metrics
from broadcast.destinations import destination_update
from broadcast.models import BUILTIN_NAME, Attempt, Delivery, Event, Status
from broadcast.retention import Pruned
from broadcast.signing import Signer, new_secret, parse_secrets
from defect.models import Defect
from defect.services import defect_create
from tests.broadcast.conftest import Answer, FakeClock, deliver_once, no_jitter
from tests.helpers import (
    CounterServer,
    builtin_destination,
    counter_deliveries,
    free_port,
    start_dispatcher,
    stop,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_410_gone_disables_the_destination_and_its_deliveries_stay_pending(scripted_server, user):
    scripted_server.script = [Answer(410)]
    for i in range(3):
        defect_create(user=user, comment=str(i))

    deliver_once(scripted_server.url, concurrency=1)

    assert len(scripted_server.received) == 1  # nothing more once gone
    destination = builtin_destination()
    assert not destination.enabled
    assert destination.disabled_reason.startswith(f"Destination {BUILTIN_NAME} answered HTTP 410")
    assert not control.pause_state().paused  # the broadcast goes on: only this destination stops
    assert set(counter_deliveries().values_list("status", "claimed_by")) == {(Status.PENDING, "")}
    gone = counter_deliveries().get(attempts=1)
    assert "HTTP 410" in gone.last_error and gone.available_at <= timezone.now()

    deliver_once(scripted_server.url, concurrency=1)  # still disabled: nothing sent
    assert len(scripted_server.received) == 1
    assert not builtin_destination().enabled

    destination_update(destination=destination, enabled=True)
    deliver_once(scripted_server.url, concurrency=1)
    assert counter_deliveries().delivered().count() == 3
    assert len(scripted_server.received) == 4
    assert builtin_destination().disabled_reason == ""


def test_an_overloaded_answers_retry_after_holds_every_request_up_to_the_retry_cap(
    scripted_server, user
):
    scripted_server.script = [Answer(503, {"Retry-After": "100"})]
    for i in range(3):
        defect_create(user=user, comment=str(i))

    deliver_once(scripted_server.url, concurrency=1, retry_max=1.5)

    first, second, third = scripted_server.received
    assert second.at - first.at >= 1.5  # the whole dispatcher waited...
    assert second.at - first.at < 50  # ...the retry cap, not Retry-After's 100 s
    assert third.at - second.at < 50
    assert counter_deliveries().delivered().count() == 2


@pytest.mark.parametrize("max_rate", [0, 1000])
def test_once_delivers_everything_due_after_a_retry_after_has_held_it(
    scripted_server, user, max_rate
):
    """Rate-limited, the round that records the hold claims nothing (held): more is due,
    not nothing. (The delivery that got the 503 is due at its retry, 5 s on: not
    `--once`'s.)"""
    scripted_server.script = [Answer(503, {"Retry-After": "1"})]
    for i in range(3):
        defect_create(user=user, comment=str(i))

    deliver_once(scripted_server.url, batch_size=1, retry_base=5.0, rand=no_jitter,
                 max_rate=max_rate)  # fmt: skip

    assert len(scripted_server.received) == 3
    assert counter_deliveries().delivered().count() == 2


def test_a_retry_after_on_a_400_holds_nothing(scripted_server, user):
    scripted_server.script = [Answer(400, {"Retry-After": "100"})]
    for i in range(2):
        defect_create(user=user, comment=str(i))
    deliver_once(scripted_server.url, concurrency=1, retry_max=30)
    first, second = scripted_server.received
    assert second.at - first.at < 20
    assert (
        counter_deliveries().failed().count() == 1 and counter_deliveries().delivered().count() == 1
    )


def test_every_attempt_is_signed_when_secrets_are_set(scripted_server, user):
    secret = new_secret()
    scripted_server.script = [Answer(500)]
    defect_create(user=user, comment="a")
    clock = FakeClock()
    signer = Signer(parse_secrets([secret]))
    deliver_once(scripted_server.url, signer=signer, clock=clock, rand=no_jitter)
    clock.advance(1)
    deliver_once(scripted_server.url, signer=signer, clock=clock, rand=no_jitter)

    key = str(Event.objects.get().key)
    assert len(scripted_server.received) == 2
    for received in scripted_server.received:
        headers = {k.lower(): v for k, v in received.headers.items()}
        assert headers["webhook-id"] == key == headers["idempotency-key"]
        assert Webhook(secret).verify(received.body, headers) == {
            "user": user.pk,
            "action": "create",
        }


def test_unsigned_without_secrets(scripted_server, user):
    defect_create(user=user, comment="a")
    deliver_once(scripted_server.url)
    (received,) = scripted_server.received
    assert not any(name.lower().startswith("webhook-") for name in received.headers)


def test_retention_prunes_old_deliveries_only_and_keeps_pending_and_failed(scripted_server, user):
    for i in range(4):
        defect_create(user=user, comment=str(i))
    old = timezone.now() - datetime.timedelta(days=30)
    # Every event 30 days old: what keeps one is a delivery not yet delivered or delivered lately.
    Event.objects.update(created_at=old)
    counter_deliveries().update(created_at=old)
    delivered_old, delivered_new, failed_old, pending_later = Event.objects.order_by("id")
    deliveries = counter_deliveries()
    deliveries.filter(event=delivered_old).update(status=Status.DELIVERED, delivered_at=old)
    deliveries.filter(event=delivered_new).update(
        status=Status.DELIVERED, delivered_at=timezone.now()
    )
    deliveries.filter(event=failed_old).update(status=Status.FAILED)
    deliveries.filter(event=pending_later).update(
        available_at=timezone.now() + datetime.timedelta(hours=1)
    )

    deliver_once(scripted_server.url, retention_days=7)

    left = set(Event.objects.values_list("id", flat=True))
    assert left == {delivered_new.pk, failed_old.pk, pending_later.pk}
    assert set(Delivery.objects.values_list("event_id", "status")) == {
        (delivered_new.pk, Status.DELIVERED),
        (failed_old.pk, Status.FAILED),
        (pending_later.pk, Status.PENDING),
    }
    assert scripted_server.received == []


def test_each_round_counts_its_outcomes_in_the_metrics(scripted_server, user):
    scripted_server.script = [Answer(500), Answer(404)]
    for i in range(4):
        defect_create(user=user, comment=str(i))
    registry = metrics.default().registry

    def count(result: str) -> float:
        labels = {"destination": "counter-server", "result": result}
        return registry.get_sample_value("broadcast_deliveries_total", labels) or 0.0

    before = {result: count(result) for result in ("delivered", "retry", "failed")}
    deliver_once(scripted_server.url, concurrency=1)
    after = {result: count(result) - before[result] for result in before}
    assert after == {"delivered": 2.0, "retry": 1.0, "failed": 1.0}


def test_each_delivery_observes_its_latency_from_creation(scripted_server, user):
    scripted_server.script = [Answer(500)]  # one retry: observed only once it is delivered
    for i in range(3):
        defect_create(user=user, comment=str(i))
    # Created 100 s ago: each latency is then over 60 s, and under 300 s however slow the run.
    created = timezone.now() - datetime.timedelta(seconds=100)
    Event.objects.update(created_at=created)
    counter_deliveries().update(created_at=created)  # the event's, copied: latency's start
    registry = metrics.default().registry
    name = "broadcast_delivery_latency_seconds"

    def sample(suffix: str, **labels: str) -> float:
        labels["destination"] = "counter-server"
        return registry.get_sample_value(f"{name}{suffix}", labels) or 0.0

    def samples() -> dict[str, float]:
        return {
            "count": sample("_count"),
            "sum": sample("_sum"),
            "le 60": sample("_bucket", le="60.0"),
            "le 300": sample("_bucket", le="300.0"),
        }

    before = samples()
    deliver_once(scripted_server.url, concurrency=1, retry_base=0.0)
    after = {key: value - before[key] for key, value in samples().items()}

    assert counter_deliveries().filter(status=Status.DELIVERED).count() == 3
    assert after["count"] == 3
    assert after["le 60"] == 0
    assert after["le 300"] == 3
    assert 3 * 100 <= after["sum"] < 3 * 300


def arrivals(log: str) -> list[datetime.datetime]:
    """The arrival times of counted events in the counter server's log."""
    return [
        datetime.datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
        for match in re.finditer(r"^(\S+) user \d+ create", log, re.M)
    ]


def sends(count: int) -> list[datetime.datetime]:
    """When each of the `count` requests to the built-in destination was sent: its
    attempt's start, as the dispatcher records it (the log must hold them all). The rate
    is the sender's to keep; what arrives also carries the receiver's own stalls."""
    started = Attempt.objects.filter(destination__name=BUILTIN_NAME).values_list(
        "started_at", flat=True
    )
    assert len(started) == count
    return list(started)


def most_in_one_second(times: list[datetime.datetime]) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= datetime.timedelta(seconds=1):
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.e2e
def test_the_rate_limit_bounds_every_second_of_sends_to_the_real_counter_server(tmp_path, user):
    server = CounterServer(free_port(), tmp_path / "counter.log").start()
    try:
        Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(150)])
        deliver_once(server.url, concurrency=16, max_rate=40)
    finally:
        server.stop()
    # Read after the stop: the server writes its log in chunks and flushes it at exit.
    assert len(arrivals(server.log())) == 150
    assert most_in_one_second(sends(150)) <= 40 * 1.1


def test_a_retry_after_releases_no_burst_past_the_rate_limit(scripted_server, user):
    """Nothing is claimed while the Retry-After holds the destination: claims made
    meanwhile would all be sent the moment it ends."""
    scripted_server.script = [Answer(503, {"Retry-After": "2"})]
    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(120)])

    deliver_once(scripted_server.url, concurrency=16, max_rate=40)

    assert len(scripted_server.received) == 121  # the one answered 503 was sent again
    sent = sorted(sends(121))
    assert max(b - a for a, b in itertools.pairwise(sent)).total_seconds() >= 2  # the hold
    assert most_in_one_second(sent) <= 40 * 1.1


def test_a_slow_destination_releases_no_burst_past_the_rate_limit(scripted_server, user):
    """Its claims wait for free connections rather than queue behind its slow requests,
    to all go out the moment they are answered."""
    scripted_server.script = [Answer(delay=1.5) for _ in range(4)]
    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(120)])

    deliver_once(scripted_server.url, concurrency=4, max_rate=40)

    assert len(scripted_server.received) == 120
    assert most_in_one_second(sends(120)) <= 40 * 1.1


@pytest.mark.e2e
@pytest.mark.parametrize("set_by", ["setting", "destination"])
def test_a_destinations_rate_holds_across_two_dispatchers(tmp_path, user, set_by):
    """The bucket is in the database: two dispatchers together keep to the rate, whether
    BROADCAST_MAX_RATE or the destination's own `max_rate` (the API's) sets it."""
    server = CounterServer(free_port(), tmp_path / "counter.log").start()
    env = {"BROADCAST_MAX_RATE": "40"} if set_by == "setting" else {}
    if set_by == "destination":
        destination_update(destination=builtin_destination(), max_rate=40)
    dispatchers = [start_dispatcher(server.url, tmp_path / f"d{n}.log", **env) for n in range(2)]
    try:
        Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(160)])
        wait_for(lambda: server.counts() == {str(user.pk): {"create": 160, "delete": 0}},
                 timeout=30, message="every creation counted")  # fmt: skip
    finally:
        for process in dispatchers:
            assert stop(process, signal.SIGTERM) == 0
        server.stop()
    assert len(arrivals(server.log())) == 160
    assert most_in_one_second(sends(160)) <= 40 * 1.1
    # Both took part (each logged its summary with deliveries).
    logs = [(tmp_path / f"d{n}.log").read_text() for n in range(2)]
    assert all(re.search(r"Last \d+s: [1-9]\d* delivered", log) for log in logs)


@pytest.mark.e2e
def test_pause_and_resume_hold_and_release_two_dispatchers(tmp_path, user):
    server = CounterServer(free_port(), tmp_path / "counter.log").start()
    control.pause(reason="maintenance")
    dispatchers = [start_dispatcher(server.url, tmp_path / f"d{n}.log") for n in range(2)]
    try:
        Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(200)])
        wait_for(lambda: "paused" in (tmp_path / "d1.log").read_text(), timeout=20,
                 message="the second dispatcher to see the pause")  # fmt: skip
        wait_for(lambda: "paused" in (tmp_path / "d0.log").read_text(), timeout=20,
                 message="the first dispatcher to see the pause")  # fmt: skip
        assert server.counts() == {}
        assert not Delivery.objects.exclude(claimed_by="").exists()
        control.resume()
        wait_for(lambda: server.counts() == {str(user.pk): {"create": 200, "delete": 0}},
                 timeout=30, message="200 events after the resume")  # fmt: skip
    finally:
        for process in dispatchers:
            assert stop(process, signal.SIGTERM) == 0
        server.stop()
    assert "duplicate" not in server.log()  # after the stop, which flushes it
    assert not control.pause_state().paused


def test_retention_never_runs_while_due_events_wait(scripted_server, user, monkeypatch):
    from broadcast.dispatch import rounds

    Defect.objects.bulk_create([Defect(user=user, comment=str(i)) for i in range(120)])
    due_at_prune = []

    def prune(**kwargs) -> Pruned:
        due_at_prune.append(counter_deliveries().due().count())
        return Pruned()

    monkeypatch.setattr(rounds, "prune_delivered", prune)
    deliver_once(scripted_server.url, batch_size=20, retention_days=7)
    assert counter_deliveries().delivered().count() == 120
    assert due_at_prune == [0]  # once, after the backlog: not at the start's first claim


DELIVERED_ONCE = 'broadcast_deliveries_total{destination="counter-server",result="delivered"} 1.0'


@pytest.mark.e2e
def test_the_dispatcher_serves_its_metrics(tmp_path, user):
    import urllib.request

    server = CounterServer(free_port(), tmp_path / "counter.log").start()
    port = free_port()
    process = start_dispatcher(server.url, tmp_path / "d.log", BROADCAST_METRICS_PORT=str(port))
    try:
        defect_create(user=user, comment="a")
        wait_for(lambda: counter_deliveries().delivered().exists(), timeout=20, message="delivery")

        def scraped() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return r.read().decode()

        wait_for(
            lambda: DELIVERED_ONCE in scraped(),
            timeout=10,
            message="the delivery counted in /metrics",
        )
    finally:
        assert stop(process, signal.SIGTERM) == 0
        server.stop()


def test_a_running_dispatcher_disabled_by_a_410_delivers_again_once_enabled(scripted_server, user):
    import threading

    from broadcast.dispatch.loop import Dispatcher
    from tests.broadcast.conftest import make_config

    scripted_server.script = [Answer(410)]
    for i in range(3):
        defect_create(user=user, comment=str(i))
    dispatcher = Dispatcher(make_config(scripted_server.url, concurrency=1))
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        wait_for(lambda: not builtin_destination().enabled, timeout=10, message="the 410's disable")
        reason = builtin_destination().disabled_reason
        assert reason.startswith(f"Destination {BUILTIN_NAME} answered HTTP 410")
        # Its deliveries stay pending, the claims the 410 left unsent released.
        wait_for(
            lambda: (
                set(counter_deliveries().values_list("status", "claimed_by"))
                == {(Status.PENDING, "")}
            ),
            timeout=10,
            message="the unsent claims released",
        )
        assert len(scripted_server.received) == 1
        assert not dispatcher.paused  # the broadcast goes on: only this destination stops
        destination_update(destination=builtin_destination(), enabled=True)
        wait_for(
            lambda: counter_deliveries().delivered().count() == 3, timeout=15, message="enabled"
        )
        assert len(scripted_server.received) == 4
        lane = dispatcher.lane(BUILTIN_NAME)
        assert lane is not None and not lane.gates.paused
    finally:
        dispatcher.stop()
        thread.join(15)


def test_a_renamed_destinations_series_move_to_its_new_name(scripted_server, user):
    import threading

    from broadcast.destinations import destination_create
    from broadcast.dispatch.loop import Dispatcher
    from tests.broadcast.conftest import make_config

    planning, _ = destination_create(name="planning", url=scripted_server.url)
    registry = metrics.default().registry

    def in_flight(name: str) -> float | None:
        return registry.get_sample_value("broadcast_in_flight", {"destination": name})

    dispatcher = Dispatcher(make_config(scripted_server.url))
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        wait_for(lambda: in_flight("planning") is not None, timeout=10, message="its lane")
        destination_update(destination=planning, name="planning-2")
        wait_for(lambda: in_flight("planning-2") is not None, timeout=10, message="renamed")
        assert in_flight("planning") is None
    finally:
        dispatcher.stop()
        thread.join(15)
