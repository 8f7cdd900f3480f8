"""The dispatcher's own Prometheus metrics, served on BROADCAST_METRICS_PORT.

Each dispatcher process keeps its metrics in a registry of its own, never the
web app's multiprocess one (the web's `/metrics` reads the database and its
workers' files, railfleet/metrics.py): a dispatcher is one process, so
prometheus-client's plain in-memory values are exact, and its HTTP server
answers from them.

The API costs one call per destination per dispatcher round
(`record_round(destination, delivered=..., retried=..., failed=..., latencies=[...])`),
not one per delivery, but for the latency histogram's observations. The
metrics are built on first use, so a process that merely imports this module
(a web worker) exports nothing. Every one is labelled with the destination's
name.

    broadcast_deliveries_total{destination,result=delivered|retry|failed}  counter
    broadcast_delivery_latency_seconds{destination}    histogram, commit to 2xx
    broadcast_in_flight{destination}                   gauge, requests awaiting an answer
    broadcast_breaker_open{destination}                gauge, 0 or 1
    broadcast_rate_limited_seconds_total{destination}  counter, time held back: claims by
                                                       the rate limit, sends by a Retry-After
"""

import contextlib
import functools
import os
from collections.abc import Iterable
from http.server import HTTPServer

from django.core.exceptions import ImproperlyConfigured
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from broadcast.conf import broadcast_setting

# From a few milliseconds (a healthy counter server) to an hour (an event
# delivered after retries through an outage).
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip

RESULTS = ("delivered", "retry", "failed")


class DispatcherMetrics:
    """The dispatcher's metrics, in `registry` (a new one of their own by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deliveries = Counter(
            "broadcast_deliveries",
            "Delivery attempts by result: delivered (2xx), retry (again later), failed (given up).",
            ["destination", "result"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "broadcast_delivery_latency_seconds",
            "Seconds from the event's commit to the destination's 2xx answer, as read.",
            ["destination"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "broadcast_in_flight",
            "Requests sent to the destination and not yet answered.",
            ["destination"],
            registry=self.registry,
        )
        self.breaker_open = Gauge(
            "broadcast_breaker_open",
            "1 while the destination's circuit breaker holds its deliveries back, else 0.",
            ["destination"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "broadcast_rate_limited_seconds",
            "Seconds the dispatcher held the destination back: its claims for its rate limit, "
            "its sends for a Retry-After.",
            ["destination"],
            registry=self.registry,
        )

    def add_destination(self, destination: str) -> None:
        """Make every series of `destination`, at 0 (a dispatcher's lane for it is new)."""
        for result in RESULTS:
            self.deliveries.labels(destination, result)
        self.latency.labels(destination)
        self.in_flight.labels(destination)
        self.breaker_open.labels(destination)
        self.rate_limited.labels(destination)

    def forget_destination(self, destination: str) -> None:
        """Drop every series of `destination` (its lane is gone: disabled, deleted), so that
        its last values (a breaker open) do not linger."""
        for result in RESULTS:
            self._remove(self.deliveries, destination, result)
        for metric in (self.latency, self.in_flight, self.breaker_open, self.rate_limited):
            self._remove(metric, destination)

    @staticmethod
    def _remove(metric, *labels: str) -> None:
        with contextlib.suppress(KeyError):  # never made
            metric.remove(*labels)

    def record_round(
        self,
        destination: str,
        *,
        delivered: int = 0,
        retried: int = 0,
        failed: int = 0,
        latencies: Iterable[float] = (),
    ) -> None:
        """Count one round's outcomes for `destination`; `latencies`: commit-to-2xx seconds
        of the delivered."""
        for result, count in (("delivered", delivered), ("retry", retried), ("failed", failed)):
            if count:
                self.deliveries.labels(destination, result).inc(count)
        observe = self.latency.labels(destination).observe
        for seconds in latencies:
            observe(max(0.0, seconds))  # a wall clock stepped back is no negative latency

    def set_in_flight(self, destination: str, count: int) -> None:
        """The number of requests to `destination` awaiting an answer now."""
        self.in_flight.labels(destination).set(count)

    def set_breaker_open(self, destination: str, is_open: bool) -> None:
        """Whether the breaker holds the deliveries to `destination` back now."""
        self.breaker_open.labels(destination).set(1 if is_open else 0)

    def add_rate_limited(self, destination: str, seconds: float) -> None:
        """Add time `destination` was held back for its rate limit (or a Retry-After)."""
        if seconds > 0:
            self.rate_limited.labels(destination).inc(seconds)

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


def add_destination(destination: str) -> None:
    """`DispatcherMetrics.add_destination` on this process's metrics."""
    default().add_destination(destination)


def forget_destination(destination: str) -> None:
    """`DispatcherMetrics.forget_destination` on this process's metrics."""
    default().forget_destination(destination)


def record_round(destination: str, **outcomes) -> None:
    """`DispatcherMetrics.record_round` on this process's metrics."""
    default().record_round(destination, **outcomes)


def set_in_flight(destination: str, count: int) -> None:
    """`DispatcherMetrics.set_in_flight` on this process's metrics."""
    default().set_in_flight(destination, count)


def set_breaker_open(destination: str, is_open: bool) -> None:
    """`DispatcherMetrics.set_breaker_open` on this process's metrics."""
    default().set_breaker_open(destination, is_open)


def add_rate_limited(destination: str, seconds: float) -> None:
    """`DispatcherMetrics.add_rate_limited` on this process's metrics."""
    default().add_rate_limited(destination, seconds)


def serve(port: int, address: str = "127.0.0.1") -> HTTPServer:
    """Serve this process's dispatcher metrics on `address:port` (`/metrics`)."""
    return default().serve(port, address)


def serve_from_settings() -> HTTPServer | None:
    """Serve on settings.BROADCAST["METRICS_PORT"] and ["METRICS_ADDRESS"]; None when unset."""
    port = broadcast_setting("METRICS_PORT")
    if port is None:
        return None
    return serve(port, broadcast_setting("METRICS_ADDRESS", "127.0.0.1"))
