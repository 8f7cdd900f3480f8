"""Run the benchmark scenarios and write bench/results/<database>.json (`make bench`).

`python -m bench.run` runs every scenario on SQLite, then on PostgreSQL when
DATABASE_URL names a PostgreSQL server (in the bench's own database, see
bench/database.py). For each database it makes the database afresh and starts
this module again as a child (`--child`) with the bench's whole environment:
Django is set up once, at the child's start, and nothing changes os.environ.

    python -m bench.run                         # everything, both databases
    python -m bench.run --db sqlite             # one database
    python -m bench.run --only steady_latency   # some scenarios (make bench-latency);
                                                # results in bench/results/tmp/ only
    python -m bench.run --only isolation --merge   # and into bench/results/<database>.json

What runs and why: bench/README.md. Sizes: bench/config.py (BENCH_* variables).
"""

import argparse
import base64
import datetime
import importlib
import json
import os
import platform
import secrets
import subprocess
import sys
import time
from pathlib import Path

from bench import config, database, procs
from bench.context import Bench, log

# Run in this order; the shared web server stops after the last one that needs it.
SCENARIOS = [
    "counter_capacity",
    "http_clients",
    "create",
    "destinations_create",
    "tokens",
    "sqlite_sync",
    "profile_web",
    "lists",
    "drain",
    "destinations_drain",
    "attempt_log",
    "profile_dispatcher",
    "steady_latency",
    "isolation",
    "idle",
]
PROFILES = {"profile_web", "profile_dispatcher"}
DATABASES = ("sqlite", "postgresql")


def bench_env(url: str) -> dict:
    """The environment of a database's run: production shape, the bench's settings.

    Signing and metrics are on (BROADCAST_SIGNING_SECRETS, METRICS_TOKEN; each
    dispatcher gets its own BROADCAST_METRICS_PORT), so the targets are met
    with them, as an operator runs the service.
    """
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": url,
        # The per-user throttle (100/s by default) would cap the load: lifted here.
        "API_THROTTLE_RATE": "1000000/second",
        "BROADCAST_SIGNING_SECRETS": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "METRICS_TOKEN": secrets.token_urlsafe(32),
        "PYTHONUNBUFFERED": "1",
    }


def chosen(db: str, only: list[str] | None) -> list:
    """The scenario modules to run on `db`, in order."""
    unknown = set(only or ()) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"no such scenario: {', '.join(sorted(unknown))} (bench/scenarios/)")
    names = (
        [n for n in SCENARIOS if n in only]
        if only
        else [n for n in SCENARIOS if config.PROFILE or n not in PROFILES]
    )
    modules = [importlib.import_module(f"bench.scenarios.{name}") for name in names]
    return [m for m in modules if db in m.DATABASES]


def setup(bench: Bench) -> None:
    """Migrate, the bench user and token, 1,000 defects newer than the bulk fixture."""
    from django.core.management import call_command

    from bench.fixtures import add_defects, bench_user_and_token

    call_command("migrate", verbosity=0, interactive=False)
    bench.user_id, bench.token = bench_user_and_token()
    add_defects(1000, user_id=bench.user_id, start=config.DEFECTS)


def child(db: str, only: list[str] | None) -> None:
    """One database's run, in this process (started by main() with its environment)."""
    import django

    django.setup()
    bench = Bench(db, dict(os.environ))
    bench.out["load_average_at_start"] = os.getloadavg()
    bench.out["commit"] = first_line_of(GIT_COMMIT)  # the code that runs (a --merge records it)
    modules = chosen(db, only)
    last_web = max((i for i, m in enumerate(modules) if m.NEEDS_WEB), default=-1)
    started = time.monotonic()
    try:
        with bench.phase("setup"):
            setup(bench)
            bench.counter = bench.start_counter("counter")
            if last_web >= 0:
                bench.web = bench.start_web()
        for i, module in enumerate(modules):
            with bench.phase(module.TITLE):
                module.run(bench)
            if i == last_web:
                procs.stop(bench.web)
    finally:
        procs.stop_all()
    bench.out["seconds"] = time.monotonic() - started
    if db == "postgresql":
        from django.db import connection

        connection.ensure_connection()
        bench.out["server_version"] = connection.pg_version
    target = config.TMP / f"{db}-partial.json" if only else config.RESULTS / f"{db}.json"
    text = json.dumps(bench.out, separators=(",", ":"), default=str)  # compact: it is committed
    target.write_text(text + "\n")
    log(f"{db}: wrote {target.relative_to(config.ROOT)}")


def machine() -> dict:
    """The machine and the versions the run used."""
    import django
    import rest_framework

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "load_average_at_start": os.getloadavg(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "drf": rest_framework.VERSION,
        "gunicorn": first_line_of([config.GUNICORN, "--version"]),
        "deno": first_line_of([config.DENO, "--version"]),
        "wrk": first_line_of(["wrk", "--version"]),
        "sqlite": __import__("sqlite3").sqlite_version,
        "commit": first_line_of(GIT_COMMIT),
        "settings": config.settings(),
    }


def merge(db: str) -> None:
    """Put a partial run's results (`--only`) into bench/results/<db>.json, in place of
    the same scenarios' earlier results, with the commit and date they were measured at
    (BENCHMARKS.md says which scenarios were merged, and when)."""
    partial = json.loads((config.TMP / f"{db}-partial.json").read_text())
    target = config.RESULTS / f"{db}.json"
    if not target.exists():
        raise SystemExit(f"{target}: no full run to merge into")
    run = json.loads(target.read_text())
    names = sorted(partial["scenarios"])
    run["scenarios"].update(partial["scenarios"])
    phases = {k: v for k, v in partial["phase_seconds"].items() if k != "setup"}
    run["phase_seconds"].update(phases)
    earlier = [m | {"scenarios": [n for n in m["scenarios"] if n not in names]}
               for m in run.get("merged", [])]  # fmt: skip
    run["merged"] = [m for m in earlier if m["scenarios"]] + [
        {
            "scenarios": names,
            "commit": partial.get("commit", "?"),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "load_average_at_start": partial.get("load_average_at_start"),
        }
    ]
    target.write_text(json.dumps(run, separators=(",", ":"), default=str) + "\n")
    log(f"{db}: merged {', '.join(names)} into {target}")


# The commit checked out (of this tree, or, with cwd=, another's).
GIT_COMMIT = ["git", "rev-parse", "--short", "HEAD"]


def first_line_of(args: list[str]) -> str:
    """The first line a command prints here (a version, the commit); "?" if it cannot run."""
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=30, cwd=config.ROOT)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["all", *DATABASES], default="all")
    parser.add_argument("--only", help="comma-separated scenario names (bench/scenarios/)")
    parser.add_argument("--merge", action="store_true",
                        help="with --only: put its results into bench/results/<database>.json, "
                        "in place of that scenario's earlier ones")  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    only = args.only.split(",") if args.only else None
    if args.merge and not only:
        parser.error("--merge needs --only")
    if args.child:
        return child(args.db, only)
    databases = [db for db in DATABASES if args.db in ("all", db)]
    if "postgresql" in databases and database.postgres_url() is None:
        databases.remove("postgresql")
        if not only:
            (config.RESULTS / "postgresql.json").unlink(missing_ok=True)
        log("DATABASE_URL names no PostgreSQL server: SQLite only")
    config.TMP.mkdir(parents=True, exist_ok=True)
    if not only:
        (config.RESULTS / "machine.json").write_text(json.dumps(machine(), indent=1) + "\n")
    started = time.monotonic()
    for db in databases:
        env = bench_env(database.prepare(db))
        command = [config.PY, "-m", "bench.run", "--child", "--db", db]
        subprocess.run(command + (["--only", args.only] if only else []), cwd=config.ROOT,
                       env=env, check=True)  # fmt: skip
        if args.merge:
            merge(db)
    spent = round(time.monotonic() - started, 1)
    if not only:
        machine_json = json.loads((config.RESULTS / "machine.json").read_text())
        machine_json["run_seconds"] = spent
        (config.RESULTS / "machine.json").write_text(json.dumps(machine_json, indent=1) + "\n")
    log(f"{', '.join(databases)}: {spent / 60:.1f} minutes")


if __name__ == "__main__":
    sys.exit(main())
