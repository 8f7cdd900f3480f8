"""A dispatcher with nothing to deliver (target 10): its CPU and its database backends'.

One dispatcher is started beside an empty outbox; after IDLE_WARMUP seconds
(its start-up, its first rounds) the CPU that it and its PostgreSQL backends
(by application_name, bench/cpu.py) spend over IDLE_SECONDS is read from /proc,
with no event created meanwhile, to the nanosecond (`cpu.run_seconds`).
"""

import time

from bench import config, cpu, procs
from bench.context import log
from bench.fixtures import clear_events

TITLE = "an idle dispatcher (target 10)"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = False
IDLE_WARMUP = 3.0


def run(bench) -> None:
    clear_events()
    for rep in range(config.REPS):
        bench.log_rep(rep)
        bench.record("idle", idle(bench, rep))


def idle(bench, rep: int) -> dict:
    counter = bench.start_counter(f"counter-idle-{rep}")
    dispatcher = bench.start_dispatcher(counter.url, f"idle-{rep}")
    backends = cpu.BackendMeter(dispatcher.application_name, read=cpu.run_seconds)
    try:
        time.sleep(IDLE_WARMUP)
        backends.sample(discover=True)
        started, before = time.monotonic(), cpu.run_seconds(dispatcher.pid) or 0.0
        while time.monotonic() - started < config.IDLE_SECONDS:
            time.sleep(1.0)  # sampled now and then: a backend exits with its client
            backends.sample(discover=True)
        elapsed = time.monotonic() - started
        own = (cpu.run_seconds(dispatcher.pid) or 0.0) - before
    finally:
        procs.stop(dispatcher)
        procs.stop(counter)
    result = {
        "seconds": round(elapsed, 1),
        "dispatcher_ms_per_s": 1000 * own / elapsed,
        "backends_ms_per_s": 1000 * backends.seconds() / elapsed,
    }
    result["cpu_ms_per_s"] = result["dispatcher_ms_per_s"] + result["backends_ms_per_s"]
    log(f"{bench.db}: idle dispatcher {result['dispatcher_ms_per_s']:.2f} ms/s, "
        f"backends {result['backends_ms_per_s']:.2f} ms/s")  # fmt: skip
    return result
