"""/health (liveness) and /ready (readiness): unauthenticated, cheap, revealing nothing else."""

from datetime import timedelta

import pytest
from django.db import OperationalError, ProgrammingError
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from broadcast.control import pause, resume
from broadcast.destinations import destination_create, destination_disable, destination_pause
from broadcast.models import Event, Status
from broadcast.services import event_enqueue
from tests.helpers import METRICS_TOKEN, counter_deliveries


def test_health_answers_without_database(client):
    # No db fixture: pytest-django would fail the test on any query.
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_ready_reports_the_database_and_the_broadcast_backlog(client):
    old = event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    long_ago = timezone.now() - timedelta(60)
    Event.objects.filter(pk=old.pk).update(created_at=long_ago)
    counter_deliveries().filter(event=old).update(created_at=long_ago)
    event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    failed = event_enqueue(payload={"user": 1, "action": "delete"}, action="delete")
    counter_deliveries().filter(event=failed).update(status=Status.FAILED)
    delivered = event_enqueue(payload={"user": 2, "action": "delete"}, action="delete")
    counter_deliveries().filter(event=delivered).update(status=Status.DELIVERED)
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body.keys() == {"database", "broadcast"}
    assert body["database"] == "ok"
    assert body["broadcast"]["pending"] == 2
    assert body["broadcast"]["failed"] == 1
    assert 60 * 86400 - 5 < body["broadcast"]["oldest_pending_age_seconds"] < 60 * 86400 + 60


@pytest.mark.django_db
def test_ready_with_empty_outbox_is_cheap(client, with_token, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        response = client.get("/ready", **with_token)
    assert response.json() == {
        "database": "ok",
        "broadcast": {
            "pending": 0,
            "failed": 0,
            "oldest_pending_age_seconds": 0.0,
            "paused": False,
            "paused_reason": "",
            "destinations": [
                {"name": "counter-server", "pending": 0, "paused": False, "disabled": False}
            ],
        },
    }


@pytest.mark.django_db
def test_ready_lists_each_destination_and_a_paused_or_disabled_one_keeps_it_ready(
    client, with_token
):
    planning = destination_create(name="planning", url="http://127.0.0.1:9/")[0]
    reports = destination_create(name="reports", url="http://127.0.0.1:9/", actions=["delete"])[0]
    event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    destination_pause(destination=planning, reason="maintenance")
    destination_disable(destination=reports, reason="answered HTTP 410")

    response = client.get("/ready", **with_token)

    assert response.status_code == 200
    assert response.json()["broadcast"]["destinations"] == [
        {"name": "counter-server", "pending": 2, "paused": False, "disabled": False},
        {"name": "planning", "pending": 2, "paused": True, "disabled": False},
        {"name": "reports", "pending": 0, "paused": False, "disabled": True},
    ]


@pytest.mark.django_db
def test_ready_shows_the_destinations_only_to_whoever_may_read_the_metrics(client, settings):
    destination_create(name="planning", url="http://127.0.0.1:9/")
    event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    settings.DEBUG, settings.METRICS_TOKEN = False, METRICS_TOKEN
    anonymous = client.get("/ready")
    wrong = client.get("/ready", HTTP_AUTHORIZATION="Bearer not-the-token")
    # The totals are for everyone (a load balancer); no destination's name or state.
    for response in (anonymous, wrong):
        assert response.status_code == 200
        assert response.json()["broadcast"]["pending"] == 2
        assert "destinations" not in response.json()["broadcast"]
        assert b"planning" not in response.content
    settings.DEBUG, settings.METRICS_TOKEN = False, ""  # /metrics hidden: so are they
    assert "destinations" not in client.get("/ready").json()["broadcast"]
    settings.DEBUG = True  # development without a token, as /metrics
    names = [d["name"] for d in client.get("/ready").json()["broadcast"]["destinations"]]
    assert names == ["counter-server", "planning"]


@pytest.mark.django_db
def test_ready_reports_a_pause_and_its_reason_without_failing(client):
    pause(reason="counter server maintenance")
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["broadcast"]["paused"] is True
    assert response.json()["broadcast"]["paused_reason"] == "counter server maintenance"

    resume()
    body = client.get("/ready").json()["broadcast"]
    assert body["paused"] is False and body["paused_reason"] == ""


@pytest.mark.django_db
def test_ready_is_503_when_the_database_does_not_answer(client, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise OperationalError("connection to server at 10.0.0.9 failed: password=hunter2")

    monkeypatch.setattr(CursorWrapper, "execute", refuse)
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"database": "unavailable"}
    # Neither the body nor the log repeat the driver's message (hosts, credentials).
    assert b"hunter2" not in response.content
    assert "hunter2" not in caplog.text
    assert "database unavailable" in caplog.text


@pytest.mark.django_db
def test_ready_logs_another_database_error_once_with_its_class_and_no_request_line(
    client, monkeypatch, caplog
):
    def fail(*args, **kwargs):
        raise ProgrammingError("no such table: broadcast_delivery")

    monkeypatch.setattr(CursorWrapper, "execute", fail)
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"database": "unavailable"}
    logged = [(r.name, r.getMessage()) for r in caplog.records]
    # Django's request logger logs a 5xx answer ("Service Unavailable: /ready") unless
    # told it was logged already: here it was, once, with the error's class.
    assert logged == [("railfleet.health", "Readiness check: database unavailable "
                       "(ProgrammingError)")]  # fmt: skip


def test_health_endpoints_are_unauthenticated_and_read_only(client, db):
    for url in ("/health", "/ready"):
        assert client.get(url).status_code == 200
        assert client.head(url).status_code == 200
        assert client.post(url).status_code == 405
    # No session is opened, no cookie set.
    assert not client.get("/ready").cookies


def test_health_endpoints_are_not_redirected_to_https(client, db, settings):
    """Behind a TLS proxy HTTP is redirected to HTTPS, but load balancers probe over HTTP."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    assert client.get("/admin/").status_code == 301
