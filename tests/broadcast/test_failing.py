"""A destination that keeps failing is warned about, disabled after days, and announced."""

import datetime
import json
import logging
import re

import pytest
from standardwebhooks import Webhook

from broadcast.destinations import destination_update
from broadcast.models import ALERTS_NAME, BUILTIN_NAME, Attempt, Destination, Status
from broadcast.signing import Signer, new_secret, parse_secrets
from defect.services import defect_create
from tests.broadcast.conftest import Answer, FakeClock, ScriptedServer, deliver_once, no_jitter
from tests.helpers import builtin_destination, counter_deliveries

pytestmark = pytest.mark.django_db(transaction=True)

HOUR = 3600


@pytest.fixture
def alert_server():
    server = ScriptedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def alerts_to(settings, alert_server):
    settings.BROADCAST = {**settings.BROADCAST, "ALERT_URL": alert_server.url}
    return alert_server


def failing_round(server, clock: FakeClock, count: int, **overrides) -> None:
    """Every due delivery fails (`count` of them): one dispatcher's run."""
    server.script = [Answer(500) for _ in range(count)]
    deliver_once(server.url, clock=clock, rand=no_jitter, concurrency=1, **overrides)
    assert not server.script, "every scripted failure was used"


def failing_from_now(server, user, count: int) -> tuple[FakeClock, datetime.datetime]:
    """`count` defects, every delivery of them failing once, now: the injected clock, and
    when the destination's clock started."""
    for i in range(count):
        defect_create(user=user, comment=str(i))
    clock = FakeClock()
    failing_round(server, clock, count)
    return clock, clock.now


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and "will be disabled" in r.getMessage()]  # fmt: skip


def test_failing_for_days_warns_at_each_threshold_then_disables_once(
    scripted_server, alerts_to, user, caplog
):
    caplog.set_level(logging.WARNING, logger="broadcast")
    clock, started = failing_from_now(scripted_server, user, 5)
    destination = builtin_destination()
    assert (destination.failing_since, destination.failing_attempts) == (started, 5)
    assert destination.enabled and warnings(caplog) == []

    for hours, percent in ((60, 50), (84, 70), (108, 90)):
        clock.now = started + datetime.timedelta(hours=hours)
        failing_round(scripted_server, clock, 5)
        (warning,) = warnings(caplog)
        assert f"({percent}% of that time gone)" in warning
        caplog.clear()
        assert builtin_destination().enabled

    clock.now = started + datetime.timedelta(hours=120)
    failing_round(scripted_server, clock, 5)
    destination = builtin_destination()
    assert not destination.enabled
    # Disabled by the first round to record a failure at 120 hours: 21 to 25 attempts.
    assert re.fullmatch(
        rf"every attempt failed since {started:%Y-%m-%d %H:%M:%S} UTC \((2[1-5]) attempts\); "
        r"the last: HTTP 500: .*",
        destination.disabled_reason,
    )
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"Destination {BUILTIN_NAME} disabled: {destination.disabled_reason}"
    ]
    # Its deliveries stay pending, to be sent once it is enabled again.
    assert set(counter_deliveries().values_list("status", flat=True)) == {Status.PENDING}
    (alert,) = alerts_to.received
    assert json.loads(alert.body) == {
        "type": "destination.disabled", "destination": BUILTIN_NAME,
        "reason": destination.disabled_reason,
    }  # fmt: skip


def test_fewer_than_ten_attempts_in_the_window_disable_nothing(scripted_server, user):
    clock, started = failing_from_now(scripted_server, user, 3)
    for hours in (121, 122):
        clock.now = started + datetime.timedelta(hours=hours)
        failing_round(scripted_server, clock, 3)
        assert builtin_destination().enabled  # 6, then 9 attempts
    clock.now = started + datetime.timedelta(hours=123)
    failing_round(scripted_server, clock, 3)
    assert not builtin_destination().enabled  # 12


def test_a_success_resets_the_clock(scripted_server, user):
    clock, started = failing_from_now(scripted_server, user, 10)

    clock.now = started + datetime.timedelta(hours=100)
    deliver_once(scripted_server.url, clock=clock, rand=no_jitter)  # they all succeed
    destination = builtin_destination()
    assert (destination.failing_since, destination.failing_attempts) == (None, 0)

    for i in range(10):
        defect_create(user=user, comment=f"again {i}")
    clock.now = started + datetime.timedelta(hours=130)
    failing_round(scripted_server, clock, 10)
    destination = builtin_destination()
    assert destination.enabled  # failing for no time since the success, not 130 hours
    assert (destination.failing_since, destination.failing_attempts) == (clock.now, 10)


def test_enabling_it_again_restarts_the_clock(scripted_server, user):
    clock, started = failing_from_now(scripted_server, user, 10)
    clock.now = started + datetime.timedelta(hours=120)
    failing_round(scripted_server, clock, 10)
    assert not builtin_destination().enabled

    destination_update(destination=builtin_destination(), enabled=True)
    destination = builtin_destination()
    assert (destination.failing_since, destination.failing_attempts) == (None, 0)
    clock.now = started + datetime.timedelta(hours=121)
    failing_round(scripted_server, clock, 10)
    destination = builtin_destination()
    # Failing for no time since it was enabled, not 121 hours: enabled still.
    assert destination.enabled and destination.disabled_reason == ""
    assert (destination.failing_since, destination.failing_attempts) == (clock.now, 10)


def test_zero_hours_never_disables(scripted_server, user):
    for i in range(10):
        defect_create(user=user, comment=str(i))
    clock = FakeClock()
    failing_round(scripted_server, clock, 10, disable_after_hours=0)
    clock.advance(1000 * HOUR)
    failing_round(scripted_server, clock, 10, disable_after_hours=0)
    assert builtin_destination().enabled and builtin_destination().failing_attempts == 20


def test_a_410_is_announced_signed_and_the_alert_retried_like_any_delivery(
    scripted_server, alerts_to, user
):
    secret = new_secret()
    signer = Signer(parse_secrets([secret]))
    scripted_server.script = [Answer(410)]
    alerts_to.script = [Answer(503)]
    defect_create(user=user, comment="a")
    clock = FakeClock()

    deliver_once(scripted_server.url, clock=clock, rand=no_jitter, signer=signer)
    reason = builtin_destination().disabled_reason
    assert reason.startswith(f"Destination {BUILTIN_NAME} answered HTTP 410")
    clock.advance(1)  # the alert, written at the real time, is due on the test's clock
    deliver_once(scripted_server.url, clock=clock, rand=no_jitter, signer=signer)
    clock.advance(1)  # its retry is due
    deliver_once(scripted_server.url, clock=clock, rand=no_jitter, signer=signer)

    first, second = alerts_to.received
    expected = {"type": "destination.disabled", "destination": BUILTIN_NAME, "reason": reason}
    for received in (first, second):
        headers = {k.lower(): v for k, v in received.headers.items()}
        assert Webhook(secret).verify(received.body, headers) == expected
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    alerts = Destination.objects.get(name=ALERTS_NAME)
    (delivery,) = alerts.deliveries.all()
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 2)
    attempts = Attempt.objects.filter(delivery=delivery).order_by("id")
    assert list(attempts.values_list("status_code", flat=True)) == [503, 200]


def test_once_sends_the_alert_of_a_410_it_got(scripted_server, alerts_to, user):
    scripted_server.script = [Answer(410)]
    defect_create(user=user, comment="a")
    deliver_once(scripted_server.url)  # the alert is written after its round's claim
    (alert,) = alerts_to.received
    assert json.loads(alert.body)["type"] == "destination.disabled"


def test_the_alerts_destination_receives_no_defect_events(alerts_to, scripted_server, user):
    deliver_once(scripted_server.url)  # its first round makes the alerts destination
    alerts = Destination.objects.get(name=ALERTS_NAME)
    assert (alerts.managed, alerts.actions, alerts.url) == (True, [], alerts_to.url)
    defect_create(user=user, comment="a")
    deliver_once(scripted_server.url)
    assert alerts.deliveries.count() == 0 and alerts_to.received == []
    assert len(scripted_server.received) == 1


def test_the_alerts_destination_receives_what_its_setting_says(alerts_to, settings):
    from broadcast.destinations import sync_alerts_destination

    alerts = sync_alerts_destination()
    with pytest.raises(Exception, match="follows the settings"):
        destination_update(destination=alerts, actions=["create"])
    settings.BROADCAST = {**settings.BROADCAST, "ALERT_URL": ""}
    sync_alerts_destination()
    alerts.refresh_from_db()
    assert not alerts.enabled and "BROADCAST_ALERT_URL is empty" in alerts.disabled_reason
