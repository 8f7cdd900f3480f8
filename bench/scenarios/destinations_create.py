"""The API's create with five destinations against one (the fan-out's cost, issue #25).

Per repetition, back to back, two create runs as bench/scenarios/create.py makes them
(CREATE_BODY, 8 connections, SECONDS, an empty outbox at the start) with no dispatcher
running: with the built-in destination alone, then with four more added (each a
Destination row subscribed to both actions), so that each creation writes its event
and five deliveries in the same statement. No dispatcher: what is measured is the
write, as `api_create_off` measures it; the destinations' URLs are never called.
"""

import time

from bench import config
from bench.fixtures import add_destinations, clear_events, event_count, remove_destinations
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
                served()
                remove_destinations()
    finally:
        clear_events()


def served(quiet: float = 1.0, limit: float = 30.0) -> None:
    """Wait until no creation has committed for `quiet` seconds: wrk drops its in-flight
    requests at its end, and the server still commits them. A destination deleted
    meanwhile could see a delivery to it committed after its deletion collected its
    deliveries (on PostgreSQL an IntegrityError at the deletion's commit)."""
    deadline = time.monotonic() + limit
    count = event_count()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        count, before = event_count(), count
        if count == before:
            return
