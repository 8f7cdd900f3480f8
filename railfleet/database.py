"""The DATABASES setting, built from DATABASE_URL.

SQLite is the embedded default; it is tuned so that a web process and a
dispatcher can write at once: WAL journal (readers never block the writer),
IMMEDIATE transactions (a transaction takes the write lock when it starts, so
two writers queue instead of failing with "database is locked" half-way) and
a busy timeout long enough to ride out a burst. The engine is
`railfleet.sqlite`, Django's SQLite backend whose transactions queue on a lock
file rather than on SQLite's busy wait (railfleet/sqlite/base.py says why).

Commits are durable by default: `synchronous=FULL` syncs the WAL to disk at
every commit, so a 201 survives a power cut, as PostgreSQL's default
`synchronous_commit=on` does. `SQLITE_SYNCHRONOUS=NORMAL` chooses the faster
mode, where a power cut (never a process crash) may undo the last commits
(docs/reliability.md, "Durability").

On PostgreSQL, parameters are bound by the server and repeated statements
prepared (POSTGRESQL_OPTIONS).
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

SQLITE_SYNCHRONOUS_MODES = ("FULL", "NORMAL")

# PostgreSQL: parameters bound by the server, and a statement run five times on
# a connection prepared there (psycopg's own threshold, which Django turns off by
# default for the sake of connection poolers): the dispatcher runs its round's
# statement about fifty times a second, and every API create the same three.
# Both save CPU in the client and in PostgreSQL (bench/ANALYSIS.md). Options in
# DATABASE_URL's query string win; `?prepare_threshold=none` (psycopg's None)
# prepares nothing, for a pooler that cannot keep prepared statements.
POSTGRESQL_OPTIONS = {
    "server_side_binding": True,
    "prepare_threshold": 5,
}

SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}


def sqlite_synchronous() -> str:
    """The PRAGMA synchronous mode named by SQLITE_SYNCHRONOUS: FULL (default) or NORMAL."""
    raw = os.environ.get("SQLITE_SYNCHRONOUS", "")
    mode = raw.strip().upper() or "FULL"
    if mode not in SQLITE_SYNCHRONOUS_MODES:
        raise ImproperlyConfigured(f"SQLITE_SYNCHRONOUS must be FULL or NORMAL, not {raw!r}.")
    return mode


def sqlite_init_command(synchronous: str) -> str:
    """The PRAGMAs every SQLite connection runs when it opens."""
    return (
        "PRAGMA journal_mode=WAL;"
        f"PRAGMA synchronous={synchronous};"
        "PRAGMA foreign_keys=ON;"
        "PRAGMA temp_store=MEMORY;"
        "PRAGMA mmap_size=134217728;"
    )


def postgresql_options(from_url: dict) -> dict:
    """POSTGRESQL_OPTIONS, overridden by DATABASE_URL's; a threshold of "none" is None."""
    options = {**POSTGRESQL_OPTIONS, **from_url}
    if str(options["prepare_threshold"]).lower() == "none":
        options["prepare_threshold"] = None
    return options


def database_config(url: str | None, base_dir: Path) -> dj_database_url.DBConfig:
    """Return the `default` database configuration for `url` (SQLite when empty)."""
    # Persistent connections with health checks: a web worker (or the
    # dispatcher) reuses its connection instead of paying a PostgreSQL
    # handshake, or SQLite's open and PRAGMAs, on every request.
    config = dj_database_url.parse(
        url or f"sqlite:///{base_dir / 'db.sqlite3'}", conn_max_age=60, conn_health_checks=True
    )
    if config["ENGINE"] == "django.db.backends.postgresql":
        config["OPTIONS"] = postgresql_options(config.get("OPTIONS", {}))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["ENGINE"] = "railfleet.sqlite"  # Django's, with writers queued on a lock
        options = {**SQLITE_OPTIONS, "init_command": sqlite_init_command(sqlite_synchronous())}
        config["OPTIONS"] = {**options, **config.get("OPTIONS", {})}
    return config
