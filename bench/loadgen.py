"""The load generator: wrk, a closed loop of keep-alive connections, bounded in time."""

import json
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
CONNECTIONS = 8
THREADS = 2


def wrk(
    url: str,
    *,
    seconds: float,
    method: str = "GET",
    body: str | None = None,
    token: str | None = None,
    connections: int = CONNECTIONS,
    script: Path = SCRIPT,
    env: dict | None = None,
) -> dict:
    """Run wrk against `url`; return requests/s, latency percentiles (ms) and error counts.

    `script` replaces wrk.lua (bench/counter_keys.lua builds on it), `env` adds variables.
    """
    env = {**os.environ, **(env or {}), "WRK_METHOD": method}
    for name, value in (("WRK_BODY", body), ("WRK_TOKEN", token)):
        if value is not None:
            env[name] = value
        else:
            env.pop(name, None)
    args = [
        "wrk",
        f"-t{min(THREADS, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=seconds + 30, check=True
    )
    line = next(line for line in out.stdout.splitlines() if line.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    seconds_run = raw["duration_us"] / 1e6
    errors = sum(
        raw[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return {
        "rps": raw["requests"] / seconds_run,
        "requests": raw["requests"],
        "seconds": seconds_run,
        "errors": errors,
        "status_errors": raw["status_errors"],
        "p50_ms": raw["p50_us"] / 1000,
        "p75_ms": raw["p75_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "p999_ms": raw["p999_us"] / 1000,
        "mean_ms": raw["lat_mean_us"] / 1000,
        "max_ms": raw["lat_max_us"] / 1000,
    }
