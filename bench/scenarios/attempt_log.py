"""What the attempt log costs a drain, and what it takes on disk (target 14, issue #26).

Per repetition, back to back, two drains as bench/scenarios/drain.py makes them (one
dispatcher running --once until nothing is due, start-up included, a fresh counter
server): with the attempt log as it ships (every attempt recorded) and with
`BROADCAST_LOG_SUCCESSES=0` (failures only; in a drain to a healthy server, nothing).
Which of the two runs first alternates from one repetition to the next, so that a
machine slowing down or speeding up over the pair falls on each alike. After each
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
            names = list(RUNS) if rep % 2 == 0 else list(reversed(RUNS))
            for name in names:
                label = f"{name.removeprefix('drain_').replace('_', '-')}-{rep}"
                result = drain(bench, 1, rep, env=RUNS[name], label=label, after=attempt_storage)
                bench.record(name, result | {"first": name == names[0]})
    finally:
        clear_events()
