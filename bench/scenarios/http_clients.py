"""Which HTTP client: each candidate POSTs events to one counter server (bench/clients.py).

bench/clients.py (its own module: the evidence for the dispatcher's client)
prints one JSON line per run. The candidates are its CLIENTS, and the asyncio
ones again on uvloop (its KINDS instead, if it ever names them itself).
"""

import json
import subprocess

from bench import clients, config

TITLE = "HTTP clients"
DATABASES = ("sqlite",)  # the database plays no part
NEEDS_WEB = False
ON_UVLOOP = ("aiohttp", "raw")  # asyncio clients whose loop uvloop replaces


def kinds() -> list[str]:
    """The client kinds `python -m bench.clients` is run with."""
    if hasattr(clients, "KINDS"):
        return list(clients.KINDS)
    return [*clients.CLIENTS, *(f"{k}+uvloop" for k in ON_UVLOOP if k in clients.CLIENTS)]


def run(bench) -> None:
    for _ in range(config.REPS):
        for kind in kinds():
            out = subprocess.run(
                [config.PY, "-m", "bench.clients", kind, bench.counter.url,
                 str(config.CLIENT_SECONDS), str(config.CONCURRENCY)],
                cwd=config.ROOT, env=bench.env, capture_output=True, text=True, timeout=60,
                check=True,
            )  # fmt: skip
            bench.record(f"client_{kind}", json.loads(out.stdout))
