"""The API's create with five destinations against one (the fan-out's cost, issue #25).

Per repetition, back to back, two create runs as bench/scenarios/create.py makes them
(CREATE_BODY, 8 connections, SECONDS, an empty outbox at the start) with no dispatcher
running: with the built-in destination alone, then with four more added (each a
Destination row subscribed to both actions), so that each creation writes its event
and five deliveries in the same statement. No dispatcher: what is measured is the
write, as `api_create_off` measures it; the destinations' URLs are never called.
"""

from bench import config
from bench.fixtures import add_destinations, clear_events, remove_destinations
from bench.scenarios.create import create

TITLE = "API create with one and five destinations"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = True
DESTINATIONS = 5


def run(bench) -> None:
    unused = "http://127.0.0.1:9/"  # the discard port: no dispatcher runs to call it
    try:
        for rep in range(config.REPS):
            bench.log_rep(rep)
            bench.record("api_create_dest_1", create(bench, "/api/defects"))
            add_destinations([unused] * (DESTINATIONS - 1))
            try:
                bench.record(f"api_create_dest_{DESTINATIONS}", create(bench, "/api/defects"))
            finally:
                remove_destinations()
    finally:
        clear_events()
