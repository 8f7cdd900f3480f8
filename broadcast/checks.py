"""System checks: what the dispatcher needs of the database."""

from django.core import checks
from django.db import connections

# UPDATE ... RETURNING and MATERIALIZED common table expressions (broadcast/store.py).
SQLITE_MINIMUM = (3, 35, 0)


@checks.register(checks.Tags.database)
def sqlite_version(app_configs, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Django 5.2 accepts SQLite 3.31; the dispatcher's claim needs 3.35."""
    errors: list[checks.CheckMessage] = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "sqlite":
            continue
        # `Database` (the sqlite3 module) is the SQLite backend's: django-stubs lacks it.
        version = connection.Database.sqlite_version_info  # type: ignore[attr-defined]
        if version < SQLITE_MINIMUM:
            errors.append(
                checks.Error(
                    f"SQLite {'.'.join(map(str, version))} is too old for the broadcast "
                    "dispatcher, which claims events with UPDATE ... RETURNING.",
                    hint="Use SQLite 3.35 or later (Python linked to it), or PostgreSQL.",
                    id="broadcast.E001",
                )
            )
    return errors
