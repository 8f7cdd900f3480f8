"""The web app's Prometheus metrics: `GET /metrics` and the API's request metrics.

Scraped values, in prometheus-client's text format:

- `broadcast_events{status}` (gauge): pending, failed and delivered events,
  counted in the database at scrape time. Pending and failed are found
  through the indexes that lead with the status; delivered too (an index-only
  count over (status, delivered_at)), exact on both databases: its cost grows
  with the delivered rows kept, which retention bounds.
- `broadcast_oldest_pending_age_seconds` (gauge): age of the oldest pending event, 0 if none.
- `broadcast_paused` (gauge): 1 while delivery is paused (broadcast.control), else 0.
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
(else 401); without it, served in debug mode and a 404 when debug is off.
"""

import os
import secrets
import time

from django.conf import settings
from django.db.models import Min
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
from broadcast.models import Event, Status

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


class OutboxCollector:
    """The outbox's state, read from the database at each scrape."""

    def collect(self):
        counts = {
            status: Event.objects.filter(status=status).count()
            for status in (Status.PENDING, Status.FAILED, Status.DELIVERED)
        }
        events = GaugeMetricFamily(
            "broadcast_events", "Outbox events by status, at scrape time.", labels=["status"]
        )
        for status, count in counts.items():
            events.add_metric([status], count)
        yield events
        oldest = Event.objects.pending().aggregate(oldest=Min("created_at"))["oldest"]
        age = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
        yield GaugeMetricFamily(
            "broadcast_oldest_pending_age_seconds",
            "Seconds since the oldest pending event was committed (0 when none is pending).",
            value=age,
        )
        paused = pause_state(using="default").paused
        yield GaugeMetricFamily(
            "broadcast_paused",
            "1 while delivery is paused (by an operator, or a 410 from the counter server).",
            value=1 if paused else 0,
        )


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


def _allowed(request: HttpRequest) -> bool:
    """The access rule of the module docstring; raises Http404 where /metrics is hidden."""
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        if not settings.DEBUG:
            raise Http404
        return True
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
    if not _allowed(request):
        response = HttpResponse("Bearer token required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
