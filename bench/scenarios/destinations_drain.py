"""Draining a backlog to two destinations against one (target 11).

Per repetition, back to back, two drains as bench/scenarios/drain.py makes them (one
dispatcher running --once until nothing is due, start-up included): to the built-in
destination alone, a fresh counter server, then to it and a second fresh counter
server added as a destination. Both drains make DRAIN_EVENTS deliveries: the second
has half the events, each delivered to both. The figure compared is deliveries per
second, what the dispatcher does (an event to two destinations is two requests).
"""

from bench import config
from bench.fixtures import clear_events
from bench.scenarios.drain import drain

TITLE = "drains to one and two destinations (target 11)"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = False


def run(bench) -> None:
    try:
        for rep in range(config.REPS):
            bench.log_rep(rep)
            for destinations in (1, 2):
                result = drain(bench, 1, rep, destinations=destinations)
                bench.record(f"drain_dest_{destinations}", result)
    finally:
        clear_events()
