"""The web app's Prometheus metrics: `GET /metrics` and the API's request metrics.

Scraped values, in prometheus-client's text format:

- `broadcast_events{status}` (gauge): pending, failed and delivered deliveries
  (to every destination: one per event while the built-in destination is the
  only one), read from the database at scrape time. Pending and failed are
  exact counts. Delivered is exact on SQLite; on PostgreSQL it is exact up to
  `DELIVERED_ESTIMATE_ABOVE` rows and beyond that the planner's estimate
  (`delivered_count`), since counting millions of rows at every scrape would
  cost seconds of the database's time.
- `broadcast_oldest_pending_age_seconds` (gauge): age of the oldest pending delivery, 0 if none.
- `broadcast_paused` (gauge): 1 while delivery is paused (broadcast.control), else 0.
- Per destination, labelled `destination` (its name):
  `broadcast_destination_pending`, `broadcast_destination_failed`,
  `broadcast_destination_oldest_pending_age_seconds`, and
  `broadcast_destination_paused` and `broadcast_destination_disabled` (1 or 0),
  and `broadcast_destination_failing_seconds` (since every attempt to it began
  failing: broadcast/failing.py).
- `api_requests_total{method,status}` (counter) and
  `api_request_duration_seconds{method,status}` (histogram): every request
  under /api/, with its final status (`RequestMetricsMiddleware`, first in
  MIDDLEWARE).

Under gunicorn the request metrics live in each worker's memory-mapped files
in PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode, set up by
railfleet/gunicorn.py); a scrape, answered by any one worker, adds up every
worker's. Without that variable (runserver, tests) the process's own
registry is served.

Access: with METRICS_TOKEN set, only `Authorization: Bearer <METRICS_TOKEN>`
(else 401); without it, served in debug mode and a 404 when debug is off. The same
rule (`may_monitor`) lets /ready list the destinations (railfleet/health.py).
"""

import datetime
import json
import os
import secrets
import time

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from broadcast.control import pause_state
from broadcast.models import Delivery, Destination, Status

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

API_REQUESTS = Counter(
    "api_requests", "Requests to the API (paths under /api/).", ["method", "status"]
)
API_LATENCY = Histogram(
    "api_request_duration_seconds",
    "Seconds from the request's arrival to its response, for paths under /api/.",
    ["method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


class RequestMetricsMiddleware:
    """Counts and times each /api/ request by method and final status."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        # Unknown methods share one label, so a client cannot grow the series without bound.
        method = request.method if request.method in _METHODS else "other"
        status = str(response.status_code)
        API_REQUESTS.labels(method, status).inc()
        API_LATENCY.labels(method, status).observe(time.perf_counter() - started)
        return response


# Above this many delivered rows (by the planner's estimate), PostgreSQL reports the estimate.
DELIVERED_ESTIMATE_ABOVE = 1_000_000


def delivered_count() -> int:
    """Delivered events: exact, or on PostgreSQL the planner's estimate when there are many.

    The estimate is the planner's row count for `status = 'delivered'`: the
    table's size scaled from its pages now (tracked as it grows) times the
    share of delivered rows from the last ANALYZE, which autovacuum repeats
    once a tenth of the table has changed; at this size and with a status
    that is nearly always `delivered`, it stays within a few percent.
    """
    delivered = Delivery.objects.delivered()
    if connection.vendor != "postgresql":
        return delivered.count()
    estimate = _planner_rows(delivered.values("id"))
    return estimate if estimate > DELIVERED_ESTIMATE_ABOVE else delivered.count()


def _planner_rows(queryset) -> int:
    """The planner's estimate of the rows `queryset` returns (PostgreSQL's EXPLAIN)."""
    plan = json.loads(queryset.explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


class OutboxCollector:
    """The outbox's state, read from the database at each scrape."""

    def collect(self):
        backlog = Delivery.objects.backlog()
        counts = {
            Status.PENDING: backlog.pending,
            Status.FAILED: backlog.failed,
            Status.DELIVERED: delivered_count(),
        }
        events = GaugeMetricFamily(
            "broadcast_events",
            "Outbox deliveries (to every destination) by status, at scrape time.",
            labels=["status"],
        )
        for status, count in counts.items():
            events.add_metric([status], count)
        yield events
        yield GaugeMetricFamily(
            "broadcast_oldest_pending_age_seconds",
            "Seconds since the oldest pending delivery's event was committed (0: none pending).",
            value=backlog.oldest_pending_age_seconds,
        )
        paused = pause_state(using="default").paused
        yield GaugeMetricFamily(
            "broadcast_paused",
            "1 while the whole broadcast is paused by an operator, else 0.",
            value=1 if paused else 0,
        )
        yield from destination_metrics()


# Per destination: (name, help, the value of a destination annotated `with_backlog()`).
DESTINATION_GAUGES = [
    ("pending", "Pending deliveries to the destination.", lambda d: d.pending),
    ("failed", "Deliveries to the destination that failed for good.", lambda d: d.failed),
    ("oldest_pending_age_seconds",
     "Seconds since the destination's oldest pending delivery's event was committed (0: none).",
     lambda d: age_seconds(d.oldest_pending)),
    ("paused", "1 while the destination is paused, else 0.", lambda d: int(d.paused)),
    ("disabled", "1 while the destination is disabled, else 0.", lambda d: int(not d.enabled)),
    ("failing_seconds",
     "Seconds since every attempt to the destination began failing (0: its last succeeded).",
     lambda d: age_seconds(d.failing_since)),
]  # fmt: skip


def destination_metrics():
    """The gauges of DESTINATION_GAUGES, labelled with each destination's name (one query)."""
    destinations = list(Destination.objects.with_backlog())
    for name, description, value in DESTINATION_GAUGES:
        family = GaugeMetricFamily(
            f"broadcast_destination_{name}", description, labels=["destination"]
        )
        for destination in destinations:
            family.add_metric([destination.name], value(destination))
        yield family


def age_seconds(since: datetime.datetime | None) -> float:
    """Seconds from `since` to now; 0 for None."""
    return max(0.0, (timezone.now() - since).total_seconds()) if since else 0.0


def registry() -> CollectorRegistry:
    """What a scrape reads: every worker's files in multiprocess mode, else this process."""
    scraped = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(scraped)
    else:
        scraped.register(_ProcessMetrics())
    scraped.register(OutboxCollector())
    return scraped


class _ProcessMetrics:
    """This process's default registry (the request metrics), for a scrape registry."""

    def collect(self):
        return REGISTRY.collect()


def may_monitor(request: HttpRequest) -> bool:
    """Whether `request` may read the monitoring data (/metrics, /ready's destinations):
    the access rule of the module docstring."""
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return settings.DEBUG
    given = request.headers.get("Authorization", "")
    scheme, _, credential = given.partition(" ")
    # Constant time: the comparison must not tell how much of a guess was right.
    return scheme.lower() == "bearer" and secrets.compare_digest(
        credential.strip().encode(), token.encode()
    )


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: Prometheus text format."""
    if not may_monitor(request):
        if not getattr(settings, "METRICS_TOKEN", ""):
            raise Http404  # hidden: debug is off and no token is set
        response = HttpResponse("Bearer token required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
