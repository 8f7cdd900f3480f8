"""Which HTTP client: each candidate POSTs events to one counter server (bench/clients.py).

bench/clients.py (its own module: the evidence for the dispatcher's client)
prints one JSON line per run; its KINDS, when it has them, name the candidates.
"""

import json
import subprocess

from bench import clients, config

TITLE = "HTTP clients"
DATABASES = ("sqlite",)  # the database plays no part
NEEDS_WEB = False
DEFAULT_KINDS = ["aiohttp", "aiohttp+uvloop", "httpx", "raw", "raw+uvloop"]


def kinds() -> list[str]:
    return list(getattr(clients, "KINDS", DEFAULT_KINDS))


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
