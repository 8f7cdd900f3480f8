"""What the attempt log costs a drain, and what it takes on disk (target 14, issue #26).

Per repetition, back to back, four drains as bench/scenarios/drain.py makes them (one
dispatcher running --once until nothing is due, start-up included, a fresh counter
server): two with the attempt log as it ships (every attempt recorded) and two with
`BROADCAST_LOG_SUCCESSES=0` (failures only; in a drain to a healthy server, nothing),
in the order A B B A, B A A B in the next repetition. A machine slowing down or
speeding up over the repetition falls on each alike: one drain of each swung by more
than the 10% judged (bench/ANALYSIS.md). Each side's rate is its events over its
drains' seconds (bench/targets.py `pooled_ratios`). After each
drain, before anything is cleared: the attempt log's rows and the bytes its table and
indexes take (bench/fixtures.py `attempt_storage`), from which the storage per
million attempts.
"""

from bench import config
from bench.fixtures import attempt_storage, clear_events
from bench.scenarios.drain import drain

TITLE = "drains with the attempt log on and off (target 14)"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = False
RUNS = {  # scenario: what is added to the dispatcher's environment
    "drain_log_on": {},
    "drain_log_off": {"BROADCAST_LOG_SUCCESSES": "0"},
}


def run(bench) -> None:
    try:
        for rep in range(config.REPS):
            bench.log_rep(rep)
            pair = list(RUNS) if rep % 2 == 0 else list(reversed(RUNS))
            for order, name in enumerate([*pair, *reversed(pair)], start=1):
                label = f"{name.removeprefix('drain_').replace('_', '-')}-{rep}-{order}"
                result = drain(bench, 1, rep, env=RUNS[name], label=label, after=attempt_storage)
                bench.record(name, result | {"rep": rep, "order": order})
    finally:
        clear_events()
