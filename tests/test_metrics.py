"""GET /metrics (railfleet/metrics.py): the token rule, the outbox gauges, the API's requests."""

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from broadcast import control
from broadcast.destinations import destination_create, destination_disable, destination_pause
from broadcast.models import Delivery, Destination, Event, Status
from broadcast.services import event_enqueue
from railfleet import metrics
from tests.helpers import METRICS_TOKEN as TOKEN
from tests.helpers import WebServer, builtin_destination, counter_deliveries, wait_for
from tests.helpers import test_database_url as database_url_of_tests


def samples(response) -> dict:
    """{(name, frozenset(labels)): value} of a scrape."""
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(scrape: dict, name: str, **labels) -> float | None:
    return scrape.get((name, frozenset(labels.items())))


def event(status=Status.PENDING, created_at=None, **fields) -> Event:
    """An event, its delivery to the built-in destination in `status` (with `fields`)."""
    created = event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    if created_at is not None:
        Event.objects.filter(pk=created.pk).update(created_at=created_at)
        fields["created_at"] = created_at
    counter_deliveries().filter(event=created).update(status=status, **fields)
    return created


@pytest.fixture
def debug_off(settings):
    settings.DEBUG = False
    settings.METRICS_TOKEN = ""


def test_served_in_debug_mode_without_a_token(client, db, settings):
    settings.DEBUG = True
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200


def test_hidden_when_debug_is_off_and_no_token_is_set(client, db, debug_off):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_with_a_token_only_the_bearer_of_it_is_answered(client, db, with_token):
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200
    for header in (None, "Bearer wrong", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer "):
        extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
        response = client.get("/metrics", **extra)
        assert response.status_code == 401, header
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN.encode() not in response.content


def test_the_token_rule_holds_in_debug_mode_too(client, db, settings):
    settings.DEBUG = True
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401


def test_not_redirected_to_https_behind_the_tls_proxy(client, db, with_token, settings):
    """Prometheus scrapes the instances directly, over plain HTTP."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.get("/api/defects").status_code == 301


def test_read_only(client, db, with_token):
    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


def test_outbox_gauges_are_read_at_scrape_time(client, db, with_token):
    now = timezone.now()
    event(created_at=now - timedelta(seconds=90))
    event()
    event(Status.FAILED)
    for _ in range(3):
        event(Status.DELIVERED, delivered_at=now)
    scrape = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    assert value(scrape, "broadcast_events", status="pending") == 2
    assert value(scrape, "broadcast_events", status="failed") == 1
    assert value(scrape, "broadcast_events", status="delivered") == 3
    assert 90 <= value(scrape, "broadcast_oldest_pending_age_seconds") < 90 + 60

    Delivery.objects.pending().update(status=Status.DELIVERED, delivered_at=now)
    scrape = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    assert value(scrape, "broadcast_events", status="pending") == 0
    assert value(scrape, "broadcast_events", status="delivered") == 5
    assert value(scrape, "broadcast_oldest_pending_age_seconds") == 0


def test_each_destination_has_its_backlog_and_state(client, db, with_token):
    planning = destination_create(name="planning", url="http://127.0.0.1:9/", actions=["create"])[0]
    now = timezone.now()
    event(created_at=now - timedelta(seconds=90))  # pending to both
    event(Status.FAILED)  # failed to the built-in destination, pending to planning
    Delivery.objects.filter(destination=planning).update(created_at=now - timedelta(seconds=30))
    destination_pause(destination=planning, reason="maintenance")

    scrape = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))

    def gauge(name: str, destination: str) -> float | None:
        return value(scrape, f"broadcast_destination_{name}", destination=destination)

    assert (gauge("pending", "counter-server"), gauge("failed", "counter-server")) == (1, 1)
    assert (gauge("pending", "planning"), gauge("failed", "planning")) == (2, 0)
    assert 90 <= gauge("oldest_pending_age_seconds", "counter-server") < 90 + 60
    assert 30 <= gauge("oldest_pending_age_seconds", "planning") < 30 + 60
    assert (gauge("paused", "counter-server"), gauge("paused", "planning")) == (0, 1)
    assert gauge("disabled", "planning") == 0

    assert gauge("failing_seconds", "planning") == 0

    destination_disable(destination=planning, reason="answered HTTP 410")
    Destination.objects.filter(pk=planning.pk).update(failing_since=now - timedelta(hours=2))
    scrape = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    assert gauge("disabled", "planning") == 1
    assert gauge("disabled", "counter-server") == 0
    assert 7200 <= gauge("failing_seconds", "planning") < 7200 + 60
    assert gauge("failing_seconds", "counter-server") == 0


def test_paused_follows_the_pause_state(client, db, with_token):
    def paused():
        scrape = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
        return value(scrape, "broadcast_paused")

    assert paused() == 0
    control.pause(reason="counter server migration")
    assert paused() == 1
    control.resume()
    assert paused() == 0


def test_api_requests_are_counted_and_timed_by_method_and_status(
    client, api_client, token, with_token
):
    def scrape():
        return samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))

    before = scrape()
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    for _ in range(3):
        assert api_client.get("/api/defects").status_code == 200
    created = api_client.post("/api/defects", {"comment": "Horn silent"}, format="json")
    assert created.status_code == 201
    assert api_client.post("/api/defects", {"comment": ""}, format="json").status_code == 400
    api_client.credentials()
    assert api_client.get("/api/defects").status_code == 401
    after = scrape()

    def delta(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta("api_requests_total", method="GET", status="200") == 3
    assert delta("api_requests_total", method="POST", status="201") == 1
    assert delta("api_requests_total", method="POST", status="400") == 1
    assert delta("api_requests_total", method="GET", status="401") == 1
    assert delta("api_request_duration_seconds_count", method="GET", status="200") == 3
    assert delta("api_request_duration_seconds_sum", method="GET", status="200") > 0


def test_other_paths_are_not_counted(client, db, with_token):
    def total():
        scrape = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
        return sum(v for (name, _), v in scrape.items() if name == "api_requests_total")

    before = total()
    client.get("/health")
    client.get("/admin/login/")
    assert total() == before


# --- Across gunicorn's workers (prometheus-client's multiprocess mode) ----------------------


def scraped_total(server: WebServer, name: str, **labels) -> float:
    status, _, body = server.request("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    scrape = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    return scrape.get((name, frozenset(labels.items())), 0)


def worker_pids(directory: Path) -> set[int]:
    """The workers that counted something: prometheus-client names its files by pid."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in directory.glob("counter_*.db")}


@pytest.fixture
def two_workers(tmp_path):
    """gunicorn with 2 workers on the test database, its metrics directory, and the server."""
    directory = tmp_path / "metrics"
    server = WebServer(
        database_url_of_tests(),
        tmp_path / "web.log",
        workers=2,
        METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(directory),
    )
    yield server, directory
    server.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.subprocess  # a real gunicorn
def test_the_workers_counts_add_up(two_workers):
    server, directory = two_workers
    server.start()
    sent = 0

    def both_workers_counted() -> bool:
        nonlocal sent
        assert server.request("/api/defects")[0] == 401  # no credentials: no database needed
        sent += 1
        return len(worker_pids(directory)) >= 2

    wait_for(both_workers_counted, timeout=60, interval=0.01, message="both workers to count")
    for _ in range(5):  # whichever worker answers the scrape, it adds up both
        assert scraped_total(server, "api_requests_total", method="GET", status="401") == sent
    count = "api_request_duration_seconds_count"
    assert scraped_total(server, count, method="GET", status="401") == sent

    # A worker killed and replaced: what it counted stays counted.
    victim = min(worker_pids(directory))
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: server.log().count("Booting worker") >= 3, timeout=60, message="a new worker")
    assert server.request("/api/defects")[0] == 401
    assert scraped_total(server, "api_requests_total", method="GET", status="401") == sent + 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.subprocess  # a real gunicorn
def test_a_restart_starts_the_counts_afresh(two_workers):
    server, _ = two_workers
    server.start()
    for _ in range(3):
        server.request("/api/defects")
    assert scraped_total(server, "api_requests_total", method="GET", status="401") == 3
    server.stop()
    server.start()
    server.request("/api/defects")
    assert scraped_total(server, "api_requests_total", method="GET", status="401") == 1


# --- Delivered events on PostgreSQL: the planner's estimate beyond a size ------------------

# Only where the suite runs on PostgreSQL (CI's second pass): SQLite always counts exactly,
# which test_outbox_gauges_are_read_at_scrape_time checks.
if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":

    @pytest.mark.postgres
    @pytest.mark.django_db(transaction=True)
    def test_postgresql_estimates_many_delivered_within_ten_percent(monkeypatch):
        assert_delivered_estimate_within_ten_percent(monkeypatch)


def deliver_rows(count: int) -> None:
    """`count` events, each with its delivery to the built-in destination written delivered
    (inserted so, as the planner's estimate is of live rows: no updated, dead ones)."""
    now, builtin = timezone.now(), builtin_destination()
    events = Event.objects.bulk_create(
        [Event(payload={"user": n % 7, "action": "create"}) for n in range(count)],
        batch_size=5000,
    )
    Delivery.objects.bulk_create(
        [Delivery(event=e, destination=builtin, status=Status.DELIVERED, delivered_at=now)
         for e in events],
        batch_size=5000,
    )  # fmt: skip


def assert_delivered_estimate_within_ten_percent(monkeypatch) -> None:
    # No autovacuum on the table meanwhile: a VACUUM that the inserts trigger (PostgreSQL
    # 13+) while the second batch's transaction runs can count its pages but not its rows,
    # and the estimate then falls far short (13,366 of 40,000 once, in a full local run).
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    try:
        assert_estimates(monkeypatch, table)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")


def assert_estimates(monkeypatch, table: str) -> None:
    deliver_rows(20_000)
    event()  # one pending
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
    assert metrics.delivered_count() == 20_000  # below the threshold: exact

    monkeypatch.setattr(metrics, "DELIVERED_ESTIMATE_ABOVE", 0)
    assert abs(metrics.delivered_count() - 20_000) <= 2_000
    # The table doubles with no ANALYZE: the estimate follows its pages.
    deliver_rows(20_000)
    assert abs(metrics.delivered_count() - 40_000) <= 4_000
