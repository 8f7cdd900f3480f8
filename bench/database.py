"""The bench's own database, made afresh before a run (no Django: the runner's side).

The bench never uses the development database, nor the one DATABASE_URL
names: SQLite gets its own file under bench/results/tmp/, PostgreSQL a
database of its own on the server DATABASE_URL names, `BENCH_PG_DATABASE`
(railfleet_bench), dropped and created again through the server's `postgres`
maintenance database.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench import config

SQLITE_FILE = config.TMP / "bench.sqlite3"


def postgres_url() -> str | None:
    """DATABASE_URL when it names a PostgreSQL server, else None."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def bench_pg_name() -> str:
    return os.environ.get("BENCH_PG_DATABASE", "railfleet_bench")


def prepare(db: str) -> str:
    """Make the bench's empty database for `db` (sqlite or postgresql); return its URL."""
    if db == "sqlite":
        config.TMP.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-writelock"):
            Path(f"{SQLITE_FILE}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{SQLITE_FILE}"
    return prepare_postgres(bench_pg_name())


def prepare_postgres(name: str) -> str:
    """Drop and create database `name` on DATABASE_URL's server; return its URL."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(postgres_url())
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        quoted = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(quoted))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(quoted))
    return urlunsplit(parts._replace(path="/" + name))
