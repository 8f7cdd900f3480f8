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
from bench.fixtures import clear_events, pending_count
from bench.stats import percentiles

TITLE = "steady delivery latency (target 5, bench-latency)"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = False


def run(bench) -> None:
    for rep in range(config.REPS):
        bench.log_rep(rep)
        bench.record("steady_latency", steady(bench, rep))


def steady(bench, rep: int) -> dict:
    """One steady run; its commit-to-arrival percentiles (ms)."""
    from django.contrib.auth import get_user_model

    from broadcast.models import Event
    from defect.services import defect_create

    clear_events()
    user = get_user_model().objects.get(pk=bench.user_id)
    counter = bench.start_counter(f"counter-latency-{rep}")
    dispatcher = bench.start_dispatcher(counter.url, f"latency-{rep}")
    try:
        interval = 1 / config.LATENCY_RATE
        count = int(config.LATENCY_RATE * config.LATENCY_SECONDS)
        started = time.monotonic()
        for i in range(count):
            time.sleep(max(0.0, started + i * interval - time.monotonic()))
            defect_create(user=user, comment="latency probe")
        deadline = time.monotonic() + 30
        while pending_count() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        procs.stop(dispatcher)
        procs.stop(counter)
    stamped = {str(key): at for key, at in Event.objects.values_list("key", "created_at")}
    arrived = counterlog.arrivals(counter.log_path, stamped)
    latencies = [(arrived[key] - at).total_seconds() * 1000 for key, at in stamped.items()
                 if key in arrived]  # fmt: skip
    result = percentiles(latencies) | {"created": count, "rate": config.LATENCY_RATE}
    clear_events()
    if latencies:
        log(f"{bench.db}: commit to arrival at {config.LATENCY_RATE:g}/s: p50 "
            f"{result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, {len(latencies)}/{count} "
            "arrived")  # fmt: skip
    return result
