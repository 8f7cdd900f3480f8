"""Create and list through the web server: targets 1, 2, 4, 5, and 8 and 9 under load.

Per repetition, back to back: the floor's create and the API's with no
dispatcher; then one dispatcher delivering to the healthy counter server while
the floor's create, the API's (8 clients: target 1's load) and the API's with
one client run; then the API's with the dispatcher delivering to a port nothing
listens on, and to a server answering after 2 s, each after a warm-up run of its
own; then the two lists. Each create run starts with an empty outbox, but for
those two, which follow their warm-up's events.
"""

import json
import os
import time

from django.utils import timezone

from bench import config, counterlog, procs
from bench.context import scrape
from bench.cpu import BackendMeter, cpu_seconds, total_cpu_seconds
from bench.fixtures import clear_events, event_count, pending_count
from bench.loadgen import wrk
from bench.stats import percentiles
from tests.helpers import free_port

TITLE = "create and list (targets 1, 2, 4, 5, 8 and 9 under load)"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = True
CREATE_BODY = json.dumps({"comment": "Pantograph carbon strip worn, car 3"})


def create(bench, path: str, *, connections: int = 8, seconds: float = config.SECONDS,
           web=None, clear: bool = True, token: str | None = None) -> dict:  # fmt: skip
    """One create run (on `web`, else the shared server) on an empty outbox (`clear`) or
    after what is in it; adds the web workers' CPU per creation served, from /proc. The
    API is called with `token`, else the run's."""
    web = web or bench.web
    if clear:
        clear_events()
    already = event_count()
    workers = procs.children(web.pid)
    cpu_before = total_cpu_seconds(workers)
    token = (token or bench.token) if path.startswith("/api/") else None
    result = wrk(web.base + path, seconds=seconds, method="POST", body=CREATE_BODY,
                 token=token, connections=connections)  # fmt: skip
    cpu = total_cpu_seconds(workers) - cpu_before
    served = event_count() - already  # wrk's last in-flight requests are served too
    result |= {"created": served, "web_cpu_ms_per_create": 1000 * cpu / max(served, 1)}
    return result


def run(bench) -> None:
    down_url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    slow_port = free_port()
    slow = procs.start([config.PY, "-m", "bench.slow_server", str(slow_port)], env=bench.env,
                       log=bench.path("slow.log"))  # fmt: skip
    procs.wait_port(slow_port, proc=slow)
    try:
        for rep in range(config.REPS):
            bench.log_rep(rep)
            bench.record("floor_create", create(bench, "/floor/create"))
            bench.record("api_create_off", create(bench, "/api/defects"))
            with_healthy_counter(bench, rep)
            for name, url in (("down", down_url), ("slow", f"http://127.0.0.1:{slow_port}/")):
                dispatcher = start_dispatcher(bench, url, f"{name}-{rep}")
                try:
                    bench.record(f"api_create_{name}", beside_an_outage(bench, dispatcher))
                finally:
                    procs.stop(dispatcher)
            lists(bench)
    finally:
        procs.stop(slow)
        clear_events()
    workers = procs.children(bench.web.pid)
    bench.out["web_workers_memory"] = [procs.memory_mb(pid) for pid in workers]


def beside_an_outage(bench, dispatcher) -> dict:
    """Target 4 with the counter server down or slow: the API's create beside `dispatcher`
    once it is in the outage's steady state, after a warm-up run that is not measured.

    The warm-up takes the dispatcher's start-up, its first failures and the breaker's
    opening (down), or its queue filling up (slow): as in the healthy case, whose
    dispatcher starts before the floor's run. Adds the share of the machine's cores
    that the dispatcher (and its PostgreSQL backends) took over each run, from /proc.
    No event is deleted under the dispatcher: the run counts the events it adds.
    """
    # Its backends may start during the warm-up (LISTEN, the first round): their whole life.
    _, warm_up = taken_by(dispatcher, lambda: create(bench, "/api/defects", clear=False,
                                                     seconds=config.SHORT_SECONDS),
                          backends_from_start=True)  # fmt: skip
    result, share = taken_by(dispatcher, lambda: create(bench, "/api/defects", clear=False))
    return result | share | {f"warm_up_{key}": value for key, value in warm_up.items()}


def taken_by(dispatcher, run, *, backends_from_start: bool = False) -> tuple[dict, dict]:
    """`run()`'s result, and the share of the machine's cores that `dispatcher` and its
    PostgreSQL backends used over it (from /proc; `backends_from_start`: each backend's
    whole life, for backends that start with the dispatcher)."""
    meter = BackendMeter(dispatcher.application_name, whole_life=backends_from_start)
    meter.sample(discover=True)
    before = cpu_seconds(dispatcher.pid) or 0.0
    started = time.monotonic()
    result = run()
    elapsed = time.monotonic() - started
    meter.sample(discover=True)
    spent = (cpu_seconds(dispatcher.pid) or 0.0) - before
    machine = (os.cpu_count() or 1) * elapsed
    return result, {
        "dispatcher_machine_share": spent / machine,
        "backend_machine_share": meter.seconds() / machine,
    }


def lists(bench) -> None:
    """Target 2: the floor's list and the API's first page, 200 defects each."""
    seconds = config.SHORT_SECONDS
    bench.record("floor_list", wrk(bench.web.base + "/floor/list", seconds=seconds))
    bench.record("api_list", wrk(bench.web.base + "/api/defects", seconds=seconds,
                                 token=bench.token))  # fmt: skip


def with_healthy_counter(bench, rep: int) -> None:
    """floor_create_on, api_create_on (delivery latency, dispatcher CPU) and api_create_one."""
    dispatcher = start_dispatcher(bench, bench.counter.url, f"on-{rep}")
    try:
        bench.record("floor_create_on", create(bench, "/floor/create"))
        settle(BackendMeter(None))  # its events delivered: none is deleted under the dispatcher
        log_offset = bench.counter.log_path.stat().st_size
        meter = BackendMeter(dispatcher.application_name)
        meter.sample(discover=True)
        cpu_before = cpu_seconds(dispatcher.pid)
        since = timezone.now()
        result = create(bench, "/api/defects")
        until = timezone.now()
        settle(meter)
        delivered = event_count() - pending_count()
        spent = cpu_seconds(dispatcher.pid) - cpu_before
        result |= {
            "dispatcher_cpu_ms_per_event": 1000 * spent / max(delivered, 1),
            "backend_cpu_ms_per_event": 1000 * meter.seconds() / max(delivered, 1),
            "dispatcher_metrics": scrape(dispatcher.metrics_url),
            "web_metrics": scrape(bench.web.base + "/metrics", bench.env.get("METRICS_TOKEN")),
        }
        result |= delivery(bench, since, until, log_offset)
        bench.record("api_create_on", result)
        one = create(bench, "/api/defects", connections=1, seconds=config.SHORT_SECONDS)
        bench.record("api_create_one", one)
        settle(BackendMeter(None))
    finally:
        procs.stop(dispatcher)


def start_dispatcher(bench, url: str, name: str):
    """A dispatcher on an empty outbox: create() empties it, and never under a dispatcher
    busy with the rows it deletes (nothing else deletes pending events)."""
    clear_events()
    return bench.start_dispatcher(url, name)


def settle(meter: BackendMeter) -> None:
    """Wait until every event is delivered (at most 60 s), sampling the backends' CPU.

    wrk drops its in-flight requests at the end; the server still commits them,
    so "nothing pending" is final only a second after the run.
    """
    settled = time.monotonic() + 1
    deadline = time.monotonic() + 60
    while (pending_count() or time.monotonic() < settled) and time.monotonic() < deadline:
        meter.sample()
        time.sleep(0.05)
    meter.sample()


def delivery(bench, since, until, log_offset: int) -> dict:
    """Commit-to-arrival latency of the events created in [since, until), in ms.

    `arrival_ms`: the arrival time the counter server logs for the event's
    Idempotency-Key (its first arrival) minus the event's `created_at`, stamped
    just before the INSERT: a small over-estimate. `recorded_ms`: the outbox's
    delivered_at - created_at, which adds the dispatcher's wait to record it.
    """
    from broadcast.models import Delivery, Status

    # The counter server's deliveries: the built-in destination's.
    rows = Delivery.objects.filter(
        destination__managed=True, created_at__gte=since, created_at__lt=until
    )
    events = {
        str(key): (created, delivered)
        for key, created, delivered in rows.filter(status=Status.DELIVERED).values_list(
            "event__key", "created_at", "delivered_at"
        )
    }
    arrivals: dict = {}
    deadline = time.monotonic() + 10  # the counter server may write its log late
    while True:
        arrivals = counterlog.arrivals(bench.counter.log_path, events, log_offset)
        if len(arrivals) == len(events) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    arrival = [(at - events[key][0]).total_seconds() * 1000 for key, at in arrivals.items()]
    recorded = [(d - c).total_seconds() * 1000 for c, d in events.values()]
    undelivered = rows.exclude(status=Status.DELIVERED).count()
    return {
        "arrival_ms": percentiles(arrival) | {"undelivered": undelivered},
        "recorded_ms": percentiles(recorded) | {"undelivered": undelivered},
        "not_in_counter_log": len(events) - len(arrivals),
    }
