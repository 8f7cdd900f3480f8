"""The DATABASES setting, built from DATABASE_URL.

SQLite is the embedded default; it is tuned so that a web process and a
dispatcher can write at once: WAL journal (readers never block the writer),
IMMEDIATE transactions (a transaction takes the write lock when it starts, so
two writers queue instead of failing with "database is locked" half-way) and
a busy timeout long enough to ride out a burst. The engine is
`railfleet.sqlite`, Django's SQLite backend whose transactions queue on a lock
file rather than on SQLite's busy wait (railfleet/sqlite/base.py says why).
"""

from pathlib import Path

import dj_database_url

SQLITE_OPTIONS = {
    "init_command": (
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "PRAGMA foreign_keys=ON;"
        "PRAGMA temp_store=MEMORY;"
        "PRAGMA mmap_size=134217728;"
    ),
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}


def database_config(url: str | None, base_dir: Path) -> dj_database_url.DBConfig:
    """Return the `default` database configuration for `url` (SQLite when empty)."""
    # Persistent connections with health checks: a web worker (or the
    # dispatcher) reuses its connection instead of paying a PostgreSQL
    # handshake, or SQLite's open and PRAGMAs, on every request.
    config = dj_database_url.parse(
        url or f"sqlite:///{base_dir / 'db.sqlite3'}", conn_max_age=60, conn_health_checks=True
    )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["ENGINE"] = "railfleet.sqlite"  # Django's, with writers queued on a lock
        config["OPTIONS"] = {**SQLITE_OPTIONS, **config.get("OPTIONS", {})}
    return config
