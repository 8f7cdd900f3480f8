"""The counter server's own capacity, in memory and with `--data FILE`, and its memory.

bench/counter_server.py (the counter server's own bench) runs each
measurement: wrk POSTing events straight to a fresh counters_server.js with a
distinct Idempotency-Key per request (bench/counter_keys.lua), as many
connections as the dispatcher's concurrency: the ceiling a drain is measured
against (target 6). Then, on the SQLite run only (the database plays no
part), the in-memory server's resident memory after BENCH_COUNTER_KEYS keys,
with the default 7-day window (every key kept) and a 1-second one (keys
forgotten as they age).
"""

from bench import config, counter_server

TITLE = "counter capacity, in memory and with --data"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = False
ONE_SECOND_IN_DAYS = counter_server.ONE_SECOND_IN_DAYS


def run(bench) -> None:
    assert counter_server.CONNECTIONS == config.CONCURRENCY, "wrk must match the dispatcher"
    for rep in range(config.REPS):
        for name, data in (("counter_capacity", False), ("counter_capacity_data", True)):
            server = f"{bench.db}-{name}-{rep}"
            bench.record(name, counter_server.capacity(server, data=data,
                                                       seconds=config.SHORT_SECONDS))  # fmt: skip
    if bench.db != "sqlite" or not config.COUNTER_KEYS:
        return
    for window, days in (("7d", None), ("1s", ONE_SECOND_IN_DAYS)):
        name = f"counter_memory_{window}"
        result = counter_server.memory_after(name, config.COUNTER_KEYS, data=False,
                                             dedupe_days=days)  # fmt: skip
        bench.record(name, result)
