"""The counter server's own capacity and memory, in memory and with --data.

`python -m bench.counter_server [--seconds S] [--keys N]` prints a JSON object:

- `capacity_memory`, `capacity_data`: wrk POSTing events, each with an Idempotency-Key
  of its own (bench/counter_keys.lua), with 64 connections, for S seconds (default 2),
  against the in-memory server and against one storing counts and keys in SQLite.
- `memory_<store>_<window>`: the server's resident memory (from /proc) after N distinct
  keys (default 1,000,000) arrived: with the default 7-day window, where every key is kept,
  and with a 1-second window, where keys are forgotten as they age, so memory stays bounded;
  with --data also the size of the data file and its WAL (`file_mb`).

`run()` is the entry point for `make bench`. Everything runs on 127.0.0.1, each wrk run is
bounded in time, filling stops after a bounded number of runs, and every server started
is stopped.
"""

import argparse
import json
import os
import secrets
import urllib.request
from pathlib import Path

from bench import procs
from bench.loadgen import SCRIPT, wrk
from tests.helpers import CounterServer

TMP = procs.ROOT / "bench" / "results" / "tmp"
KEYS_SCRIPT = Path(__file__).resolve().parent / "counter_keys.lua"
EVENT_BODY = json.dumps({"user": 1, "action": "create"})
CONNECTIONS = 64
ONE_SECOND_IN_DAYS = 1 / 86_400
FILL_RUN_SECONDS = 5
MAX_FILL_RUNS = 200  # bounds the fill even if the server answers slower than expected


class Server:
    """A counters_server.js process for one measurement, stopped on exit."""

    def __init__(self, name: str, *, data: bool, dedupe_days: float | None = None) -> None:
        TMP.mkdir(parents=True, exist_ok=True)
        data_path = TMP / f"counter-bench-{name}.sqlite3" if data else None
        for suffix in ("", "-wal", "-shm"):
            if data_path is not None:
                Path(f"{data_path}{suffix}").unlink(missing_ok=True)
        self.data_path = data_path
        port = procs.free_port()
        log = TMP / f"counter-bench-{name}.log"
        command = CounterServer(port, log, data=data_path, dedupe_days=dedupe_days).command()
        self.url = f"http://127.0.0.1:{port}/"
        self.proc = procs.start(command, env=dict(os.environ), log=log)
        procs.wait_port(port, proc=self.proc)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        procs.stop(self.proc)

    def post_events(self, seconds: float) -> dict:
        """wrk for `seconds`, a fresh Idempotency-Key per request."""
        env = {"WRK_BASE_SCRIPT": str(SCRIPT), "WRK_KEY_PREFIX": secrets.token_hex(4)}
        return wrk(
            self.url,
            seconds=seconds,
            method="POST",
            body=EVENT_BODY,
            connections=CONNECTIONS,
            script=KEYS_SCRIPT,
            env=env,
        )

    def counted(self) -> int:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            counts = json.load(response)
        return sum(n for actions in counts.values() for n in actions.values())


def capacity(name: str, *, data: bool, seconds: float) -> dict:
    """Requests per second the server answers, each event with a key of its own."""
    with Server(name, data=data) as server:
        return server.post_events(seconds)


def memory_after(name: str, keys: int, *, data: bool, dedupe_days: float | None) -> dict:
    """The server's resident memory once `keys` distinct keys were counted."""
    with Server(name, data=data, dedupe_days=dedupe_days) as server:
        for _ in range(MAX_FILL_RUNS):
            if server.counted() >= keys:
                break
            server.post_events(FILL_RUN_SECONDS)
        result = {"keys": server.counted(), **procs.memory_mb(server.proc.pid)}
        if server.data_path is not None:
            files = (Path(f"{server.data_path}{suffix}") for suffix in ("", "-wal"))
            result["file_mb"] = sum(f.stat().st_size for f in files if f.exists()) / 2**20
        return result


def run(*, seconds: float = 2.0, keys: int = 1_000_000) -> dict:
    """Capacity with and without --data, and memory after `keys` keys; see the module doc."""
    results = {
        "capacity_memory": capacity("capacity-memory", data=False, seconds=seconds),
        "capacity_data": capacity("capacity-data", data=True, seconds=seconds),
    }
    for store, data in (("memory", False), ("data", True)):
        for window, days in (("7d", None), ("1s", ONE_SECOND_IN_DAYS)):
            name = f"memory_{store}_{window}"
            results[name] = memory_after(name, keys, data=data, dedupe_days=days)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per capacity run (2)")
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys before RSS (1,000,000)")
    args = parser.parse_args()
    try:
        print(json.dumps(run(seconds=args.seconds, keys=args.keys), indent=2))
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
