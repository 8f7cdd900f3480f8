"""The bench's sizes and durations, read once from BENCH_* variables (bench/README.md).

The defaults are the committed run's; the small values in bench/README.md's
"Smoke run" make a whole `make bench` finish in a minute or two.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TMP = RESULTS / "tmp"
VENV_BIN = ROOT / ".venv" / "bin"
PY = str(VENV_BIN / "python")
GUNICORN = str(VENV_BIN / "gunicorn")
PYSPY = str(VENV_BIN / "py-spy")
DENO = str(ROOT / "node_modules" / ".bin" / "deno")


def _number(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


SECONDS = _number("BENCH_SECONDS", 4)  # one create run (targets 1, 4, 5, 8, 9)
REPS = int(_number("BENCH_REPS", 3))  # repetitions of every measurement (drains included)
DRAIN_EVENTS = int(_number("BENCH_DRAIN_EVENTS", 100_000))
DEFECTS = int(_number("BENCH_DEFECTS", 1_000_000))
DEEP_PAGES = int(_number("BENCH_DEEP_PAGES", 1000))
PROFILE = os.environ.get("BENCH_PROFILE", "1") == "1"
LATENCY_SECONDS = _number("BENCH_LATENCY_SECONDS", 10)  # one steady run (bench-latency)
LATENCY_RATE = _number("BENCH_LATENCY_RATE", 20)  # creations a second
IDLE_SECONDS = _number("BENCH_IDLE_SECONDS", 30)  # an idle dispatcher's measured run
COMMITS = int(_number("BENCH_COMMITS", 1000))  # per SQLite synchronous mode and repetition
SHORT_SECONDS = min(SECONDS, 2)  # list, page, one-client and counter-capacity runs
CLIENT_SECONDS = 1.0  # per HTTP client run (bench/clients.py)
PROFILE_EVENTS = min(DRAIN_EVENTS, 10_000)  # backlog drained under py-spy
# The dispatcher's concurrency, passed to every dispatcher; wrk measures the counter
# server's capacity with as many connections (target 6: bench/counter_server.py).
CONCURRENCY = 64
# Distinct keys sent before the counter server's memory is read (0: not measured).
COUNTER_KEYS = int(_number("BENCH_COUNTER_KEYS", 50_000))
WEB_WORKERS = 2
WEB_THREADS = 2


def settings() -> dict:
    """The knobs as the report shows them."""
    return {
        "seconds": SECONDS,
        "reps": REPS,
        "short_seconds": SHORT_SECONDS,
        "client_seconds": CLIENT_SECONDS,
        "drain_events": DRAIN_EVENTS,
        "defects": DEFECTS,
        "deep_pages": DEEP_PAGES,
        "profile_events": PROFILE_EVENTS,
        "latency_seconds": LATENCY_SECONDS,
        "latency_rate": LATENCY_RATE,
        "idle_seconds": IDLE_SECONDS,
        "commits": COMMITS,
        "counter_keys": COUNTER_KEYS,
        "concurrency": CONCURRENCY,
        "web_workers": WEB_WORKERS,
        "web_threads": WEB_THREADS,
    }
