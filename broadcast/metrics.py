"""The dispatcher's own Prometheus metrics, served on BROADCAST_METRICS_PORT.

Each dispatcher process keeps its metrics in a registry of its own, never the
web app's multiprocess one (the web's `/metrics` reads the database and its
workers' files, railfleet/metrics.py): a dispatcher is one process, so
prometheus-client's plain in-memory values are exact, and its HTTP server
answers from them.

The API costs one call per dispatcher round
(`record_round(delivered=..., retried=..., failed=..., latencies=[...])`),
not one per event, the latency histogram's included (`RoundHistogram`). The
metrics are built on first use, so a process that merely imports this module
(a web worker) exports nothing.

    broadcast_deliveries_total{result=delivered|retry|failed}  counter
    broadcast_delivery_latency_seconds    histogram, commit to 2xx
    broadcast_in_flight                   gauge, requests awaiting an answer
    broadcast_breaker_open                gauge, 0 or 1
    broadcast_rate_limited_seconds_total  counter, time held back by the rate limit
"""

import bisect
import functools
import math
import os
import threading
from collections.abc import Iterable, Iterator
from http.server import HTTPServer

from django.core.exceptions import ImproperlyConfigured
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from broadcast.conf import broadcast_setting

# From a few milliseconds (a healthy counter server) to an hour (an event
# delivered after retries through an outage).
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip

RESULTS = ("delivered", "retry", "failed")


class RoundHistogram(Collector):
    """A Prometheus histogram that takes a round's observations at once (`observe_all`).

    prometheus-client's `Histogram` has only a per-value `observe`, which scans
    the buckets and takes two locks for each, a per-event cost in a drain's
    profile (bench/ANALYSIS.md). Here a round's values are sorted once and each
    bucket's count found by bisection; they are exported through the
    library's public collector API, as `Histogram` exports them (the same
    counts, the sum to rounding; no `_created`). A value below zero (the wall
    clock stepped back) or not a number counts as zero, as `observe(max(0, v))`.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Iterable[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name, self._documentation = name, documentation
        self._bounds = [float(bound) for bound in buckets]
        if self._bounds != sorted(self._bounds):
            raise ValueError("Buckets not in sorted order")
        if not self._bounds or self._bounds[-1] != math.inf:
            self._bounds.append(math.inf)
        self._cumulative = [0] * len(self._bounds)  # observations <= each bound
        self._sum = 0.0
        self._lock = threading.Lock()  # folds on the loop thread, reads on the server's
        registry.register(self)

    def observe_all(self, values: Iterable[float]) -> None:
        """Add every value of `values` (seconds) to the histogram."""
        ordered = sorted(value if value > 0.0 else 0.0 for value in values)  # NaN too
        if not ordered:
            return
        with self._lock:
            for i, bound in enumerate(self._bounds):
                self._cumulative[i] += bisect.bisect_right(ordered, bound)
            self._sum += math.fsum(ordered)

    def describe(self) -> Iterator[HistogramMetricFamily]:
        """The metric's name and type, for the registry's duplicate check."""
        yield HistogramMetricFamily(self._name, self._documentation)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """The buckets (cumulative, as Prometheus reads them), count and sum now."""
        with self._lock:
            counts, total = list(self._cumulative), self._sum
        family = HistogramMetricFamily(self._name, self._documentation)
        buckets = [(floatToGoString(b), c) for b, c in zip(self._bounds, counts, strict=True)]
        family.add_metric([], buckets, total)
        yield family


class DispatcherMetrics:
    """The dispatcher's metrics, in `registry` (a new one of their own by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deliveries = Counter(
            "broadcast_deliveries",
            "Delivery attempts by result: delivered (2xx), retry (again later), failed (given up).",
            ["result"],
            registry=self.registry,
        )
        for result in RESULTS:  # every series exists from the start, at 0
            self.deliveries.labels(result=result)
        self.latency = RoundHistogram(
            "broadcast_delivery_latency_seconds",
            "Seconds from the event's commit to the counter server's 2xx answer, as read.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "broadcast_in_flight",
            "Requests sent to the counter server and not yet answered.",
            registry=self.registry,
        )
        self.breaker_open = Gauge(
            "broadcast_breaker_open",
            "1 while the circuit breaker holds deliveries back, else 0.",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "broadcast_rate_limited_seconds",
            "Seconds the dispatcher waited for the rate limit or a Retry-After.",
            registry=self.registry,
        )

    def record_round(
        self,
        *,
        delivered: int = 0,
        retried: int = 0,
        failed: int = 0,
        latencies: Iterable[float] = (),
    ) -> None:
        """Count one round's outcomes; `latencies`: commit-to-2xx seconds of the delivered."""
        for result, count in (("delivered", delivered), ("retry", retried), ("failed", failed)):
            if count:
                self.deliveries.labels(result=result).inc(count)
        self.latency.observe_all(latencies)

    def set_in_flight(self, count: int) -> None:
        """The number of requests awaiting an answer now."""
        self.in_flight.set(count)

    def set_breaker_open(self, is_open: bool) -> None:
        """Whether the circuit breaker holds deliveries back now."""
        self.breaker_open.set(1 if is_open else 0)

    def add_rate_limited(self, seconds: float) -> None:
        """Add time spent waiting for the rate limit (or a Retry-After)."""
        if seconds > 0:
            self.rate_limited.inc(seconds)

    def serve(self, port: int, address: str = "127.0.0.1") -> HTTPServer:
        """Serve this registry at http://address:port/metrics (a daemon thread); return the server.

        Port 0 picks a free port: read it back from `server.server_port`.
        """
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # prometheus-client would then keep these values in the web's files.
            raise ImproperlyConfigured(
                "PROMETHEUS_MULTIPROC_DIR is for the web processes only: unset it for the "
                "dispatcher, whose metrics live in its own memory."
            )
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return server


@functools.cache
def default() -> DispatcherMetrics:
    """This process's dispatcher metrics, built on first use."""
    return DispatcherMetrics()


def record_round(**outcomes) -> None:
    """`DispatcherMetrics.record_round` on this process's metrics."""
    default().record_round(**outcomes)


def set_in_flight(count: int) -> None:
    """`DispatcherMetrics.set_in_flight` on this process's metrics."""
    default().set_in_flight(count)


def set_breaker_open(is_open: bool) -> None:
    """`DispatcherMetrics.set_breaker_open` on this process's metrics."""
    default().set_breaker_open(is_open)


def add_rate_limited(seconds: float) -> None:
    """`DispatcherMetrics.add_rate_limited` on this process's metrics."""
    default().add_rate_limited(seconds)


def serve(port: int, address: str = "127.0.0.1") -> HTTPServer:
    """Serve this process's dispatcher metrics on `address:port` (`/metrics`)."""
    return default().serve(port, address)


def serve_from_settings() -> HTTPServer | None:
    """Serve on settings.BROADCAST["METRICS_PORT"] and ["METRICS_ADDRESS"]; None when unset."""
    port = broadcast_setting("METRICS_PORT")
    if port is None:
        return None
    return serve(port, broadcast_setting("METRICS_ADDRESS", "127.0.0.1"))
