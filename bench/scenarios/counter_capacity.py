"""The counter server's own capacity: wrk POSTing events straight to counters_server.js.

With as many connections as the dispatcher's concurrency, a distinct
Idempotency-Key per request (as the dispatcher sends), to a fresh server per
run, in memory and with `--data FILE` (its SQLite store): the ceiling a drain
is measured against (target 6).
"""

import json

from bench import config, procs
from bench.loadgen import wrk

TITLE = "counter capacity, in memory and with --data"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = False
EVENT_BODY = json.dumps({"user": 1, "action": "create"})


def measure(bench, name: str, data=None) -> dict:
    """One wrk run against a fresh counter server."""
    counter = bench.start_counter(name, data=data)
    try:
        return wrk(counter.url, seconds=config.SHORT_SECONDS, method="POST", body=EVENT_BODY,
                   connections=config.CONCURRENCY, keys=True)  # fmt: skip
    finally:
        procs.stop(counter)


def run(bench) -> None:
    for rep in range(config.REPS):
        bench.record("counter_capacity", measure(bench, f"counter-capacity-{rep}"))
        data = bench.path(f"counter-capacity-{rep}.sqlite3")
        result = measure(bench, f"counter-capacity-data-{rep}", data)
        bench.record("counter_capacity_data", result | {"data_file_bytes": _size(data)})


def _size(path) -> int:
    """The data file's size: 0 when the server wrote none (it ignored --data)."""
    return path.stat().st_size if path.exists() else 0
