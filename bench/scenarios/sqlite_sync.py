"""What SQLite's synchronous=FULL costs against NORMAL (WAL mode), per commit and per API create.

Per commit: COMMITS one-row transactions on a scratch WAL file, with the
standard library's sqlite3 and `PRAGMA synchronous` set explicitly (the mode's
own cost, whatever the project's default). Per API create: the shared web
server (the project's default) and a second one started with
SQLITE_SYNCHRONOUS=NORMAL, no dispatcher, alternately; each server's mode in
effect is read back through Django with the same environment, so a setting
the code ignores shows as such.
"""

import sqlite3
import subprocess
import time

from bench import config, procs
from bench.scenarios.create import create

TITLE = "SQLite synchronous FULL vs NORMAL"
DATABASES = ("sqlite",)
NEEDS_WEB = True
MODES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
READ_MODE = (
    "from django.db import connection\n"
    "with connection.cursor() as c:\n"
    "    c.execute('PRAGMA synchronous')\n"
    "    print(c.fetchone()[0])\n"
)


def commit_ms(path, mode: str) -> float:
    """Milliseconds per one-row commit in WAL mode with `PRAGMA synchronous=mode`."""
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={mode}")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        started = time.perf_counter()
        for i in range(config.COMMITS):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t (v) VALUES (?)", (f"row {i}",))
            db.execute("COMMIT")
        return 1000 * (time.perf_counter() - started) / config.COMMITS
    finally:
        db.close()


def mode_in_effect(env: dict) -> str:
    """The synchronous mode a Django process with `env` runs with."""
    out = subprocess.run(
        [config.PY, "manage.py", "shell", "-c", READ_MODE],
        cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return MODES.get(int(out.stdout.split()[-1]), out.stdout.strip())


def run(bench) -> None:
    scratch = bench.path("synchronous.sqlite3")
    for _ in range(config.REPS):
        for mode in ("FULL", "NORMAL"):
            result = {"ms_per_commit": commit_ms(scratch, mode)}
            bench.record(f"sqlite_commit_{mode.lower()}", result)
    normal_env = {"SQLITE_SYNCHRONOUS": "NORMAL"}
    bench.out["sqlite_synchronous_in_effect"] = {
        "default": mode_in_effect(bench.env),
        "SQLITE_SYNCHRONOUS=NORMAL": mode_in_effect({**bench.env, **normal_env}),
    }
    normal = bench.start_web("web-normal", **normal_env)
    try:
        for rep in range(config.REPS):
            bench.log_rep(rep)
            bench.record("api_create_sync_default", create(bench, "/api/defects"))
            bench.record("api_create_sync_normal", create(bench, "/api/defects", web=normal))
    finally:
        procs.stop(normal)
