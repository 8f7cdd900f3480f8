"""Draining a backlog: targets 6, 7 and 8 in a drain.

DRAIN_EVENTS due events inserted in SQL, a fresh counter server, then
`manage.py broadcast --once` (one; on PostgreSQL also two at once, back to
back in each repetition) until nothing is due. Rate: events / wall time from
the start to the last exit (start-up included). While they run, every 0.05 s:
each dispatcher's VmHWM (peak RSS) and its PostgreSQL backends' CPU; the
backlog every 0.5 s for the plot (a COUNT competes for the cores). A
dispatcher's own CPU is read from /proc once it has exited, before it is
reaped, start-up included (Python, Django, the connection); what start-up
took is recorded beside it.
"""

import time

from bench import config, counterlog, procs
from bench.context import scrape
from bench.cpu import BackendMeter, cpu_seconds
from bench.fixtures import (
    add_destinations,
    add_pending_events,
    clear_events,
    pending_count,
    remove_destinations,
)

TITLE = "drains (targets 6, 7, 8)"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = False
LIMIT_SECONDS = 600
STARTED = "delivering (built-in destination:"  # the dispatcher's log line once it is set up


def run(bench) -> None:
    counts = (1, 2) if bench.db == "postgresql" else (1,)
    try:
        for rep in range(config.REPS):
            bench.log_rep(rep)
            for dispatchers in counts:
                bench.record(f"drain_{dispatchers}", drain(bench, dispatchers, rep))
    finally:
        clear_events()


def drain(
    bench,
    dispatchers: int,
    rep: int,
    *,
    destinations: int = 1,
    env: dict | None = None,
    label: str | None = None,
    after=None,
) -> dict:
    """One drain of DRAIN_EVENTS deliveries by `dispatchers` dispatchers running --once.

    With `destinations` > 1 (bench/scenarios/destinations_drain.py), each is a fresh
    counter server of its own, the others added beside the built-in one, and the
    backlog is DRAIN_EVENTS // destinations events, each one delivery per destination:
    the same deliveries to make whatever their number. `env` is added to each
    dispatcher's environment, `label` names the run's logs, and `after()`, called once
    the dispatchers have exited and before anything is cleared, adds its figures to
    the result (bench/scenarios/attempt_log.py).
    """
    clear_events()
    name = label or (f"{dispatchers}-{rep}" if destinations == 1 else f"dest-{destinations}-{rep}")
    counters = [bench.start_counter(f"counter-drain-{name}-{i}" if i else f"counter-drain-{name}")
                for i in range(destinations)]  # fmt: skip
    events = config.DRAIN_EVENTS // destinations
    try:
        add_destinations([c.url for c in counters[1:]])
        add_pending_events(events)
        deliveries = pending_count()
        runners = [
            bench.start_dispatcher(counters[0].url, f"drain-{name}-{i}", once=True, env=env)
            for i in range(dispatchers)
        ]
        watched = watch(runners)
        left = pending_count()
        extra = after() if after else {}
        watched["curve"].append((round(watched["seconds"], 3), left))
    finally:
        for counter in counters:
            procs.stop(counter)
        remove_destinations()
    tallies = [counterlog.tally(c.log_path) for c in counters]  # once stopped: they buffer
    tally = {key: sum(t[key] for t in tallies) for key in ("counted", "duplicates")}
    delivered = deliveries - left
    return {
        "events": events,
        "events_per_s": (events - left / destinations) / watched["seconds"],
        "deliveries": deliveries,
        "deliveries_per_s": delivered / watched["seconds"],
        "left_pending": left,
        **tally,
        "counted_per_destination": [t["counted"] for t in tallies],
        **watched,
        "dispatcher_cpu_ms_per_event": 1000 * sum(watched["cpu_s"]) / max(delivered, 1),
        "backend_cpu_ms_per_event": 1000 * watched["backend_cpu_s"] / max(delivered, 1),
        **extra,
    }


def watch(runners: list) -> dict:
    """Sample the dispatchers until they have all exited; their figures."""
    n = len(runners)
    meters = [BackendMeter(r.application_name, whole_life=True) for r in runners]
    peak, anon, file, cpu = ([0.0] * n for _ in range(4))
    startup: list = [None] * n  # CPU spent before it logged "delivering to"
    exits: dict[int, float] = {}
    metrics: list = [None] * n
    curve = []
    started = next_count = next_discovery = time.monotonic()
    while len(exits) < n and time.monotonic() - started < LIMIT_SECONDS:
        now = time.monotonic()
        if now >= next_count:
            curve.append((round(now - started, 3), pending_count()))
            next_count += 0.5
        discover = now >= next_discovery  # new backends: at most one query a second
        next_discovery += 1 if discover else 0
        for i, runner in enumerate(runners):
            if i in exits:
                continue
            meters[i].sample(discover=discover)
            memory = procs.memory_mb(runner.pid)
            peak[i] = max(peak[i], memory.get("peak_rss_mb", 0))
            anon[i] = max(anon[i], memory.get("rss_anon_mb", 0))
            file[i] = max(file[i], memory.get("rss_file_mb", 0))
            if startup[i] is None and STARTED in runner.log_path.read_text(errors="replace"):
                startup[i] = cpu_seconds(runner.pid)
            if metrics[i] is None and startup[i] is not None:  # its server is up by then
                metrics[i] = scrape(runner.metrics_url)
            if procs.has_exited(runner):
                cpu[i] = cpu_seconds(runner.pid) or 0.0  # its zombie's final times
                exits[i] = time.monotonic() - started
                procs.reap(runner)
        time.sleep(0.05)
    elapsed = max(exits.values(), default=time.monotonic() - started)
    for runner in runners:
        code = procs.stop(runner)
        if code != 0:
            raise RuntimeError(f"dispatcher exited with {code}: {runner.log_path}")
    return {
        "seconds": elapsed,
        "peak_rss_mb": peak,
        "peak_rss_anon_mb": anon,
        "peak_rss_file_mb": file,
        "cpu_s": cpu,
        "startup_cpu_s": startup,
        "backend_cpu_s": sum(m.seconds() for m in meters),
        "dispatcher_metrics": metrics,
        "curve": curve,
    }
