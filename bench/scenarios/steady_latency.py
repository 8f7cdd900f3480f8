"""Delivery latency in normal operation (target 5 at a steady rate; `make bench-latency`).

LATENCY_RATE creations a second for LATENCY_SECONDS through the service
(defect_create, on a fixed schedule), one dispatcher, a fresh counter server;
then each event's `created_at` is joined with the arrival time the counter
server logs for its Idempotency-Key. `created_at` is stamped just before the
INSERT, so the figure slightly over-estimates commit-to-arrival.
"""

import time

from bench import config, counterlog, procs
from bench.context import log
from bench.fixtures import add_destinations, clear_events, pending_count, remove_destinations
from bench.stats import percentiles

TITLE = "steady delivery latency (target 5, bench-latency)"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = False


def run(bench) -> None:
    for rep in range(config.REPS):
        bench.log_rep(rep)
        bench.record("steady_latency", steady(bench, rep))


def steady(
    bench, rep: int, *, beside: str | None = None, name: str = "latency",
    seconds: float = config.LATENCY_SECONDS,
) -> dict:  # fmt: skip
    """One steady run of `seconds`; its commit-to-arrival percentiles (ms) at the fresh
    counter server, the built-in destination.

    `beside`: the URL of a second destination, added for the run and deleted after it
    (bench/scenarios/isolation.py); what it was sent is recorded, and only the counter
    server's deliveries are waited for.
    """
    from django.contrib.auth import get_user_model

    from broadcast.models import Delivery, Event
    from defect.services import defect_create

    clear_events()
    user = get_user_model().objects.get(pk=bench.user_id)
    counter = bench.start_counter(f"counter-{name}-{rep}")
    try:
        add_destinations([beside] if beside else [])
        dispatcher = bench.start_dispatcher(counter.url, f"{name}-{rep}")
        try:
            interval = 1 / config.LATENCY_RATE
            count = int(config.LATENCY_RATE * seconds)
            started = time.monotonic()
            for i in range(count):
                time.sleep(max(0.0, started + i * interval - time.monotonic()))
                defect_create(user=user, comment="latency probe")
            deadline = time.monotonic() + 30
            while pending_count(builtin_only=True) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            procs.stop(dispatcher)
            procs.stop(counter)
        second = Delivery.objects.filter(destination__managed=False)
        beside_result = {
            "beside_attempts": sum(second.values_list("attempts", flat=True)),
            "beside_delivered": second.exclude(delivered_at=None).count(),
        }
    finally:
        remove_destinations()
    stamped = {str(key): at for key, at in Event.objects.values_list("key", "created_at")}
    arrived = counterlog.arrivals(counter.log_path, stamped)
    latencies = [(arrived[key] - at).total_seconds() * 1000 for key, at in stamped.items()
                 if key in arrived]  # fmt: skip
    result = percentiles(latencies) | {"created": count, "rate": config.LATENCY_RATE}
    if beside:
        result |= beside_result
    clear_events()
    if latencies:
        log(f"{bench.db} {name}: commit to arrival at {config.LATENCY_RATE:g}/s: p50 "
            f"{result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, {len(latencies)}/{count} "
            "arrived")  # fmt: skip
    return result
