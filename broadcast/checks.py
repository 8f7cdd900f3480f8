"""System checks: what the dispatcher needs of the database and of its settings."""

from django.core import checks
from django.db import connections

from broadcast.conf import broadcast_setting

# MATERIALIZED common table expressions, in the claim (broadcast/store.py).
SQLITE_MINIMUM = (3, 35, 0)
# The checks of the dispatcher's settings: the ones `manage.py broadcast` runs at start.
TAG = "broadcast"


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
                    "dispatcher, whose claim needs MATERIALIZED common table expressions.",
                    hint="Use SQLite 3.35 or later (Python linked to it), or PostgreSQL.",
                    id="broadcast.E001",
                )
            )
    return errors


@checks.register(TAG)
def signing_secrets(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Refuse to start with a malformed BROADCAST_SIGNING_SECRETS (the secret is never shown)."""
    from broadcast.signing import SigningSecretError, parse_secrets

    try:
        parse_secrets(broadcast_setting("SIGNING_SECRETS", []))
    except SigningSecretError as exc:
        return [
            checks.Error(
                str(exc),
                hint="Each secret is whsec_ followed by the base64 of at least 24 random "
                "bytes; python manage.py broadcast_secret prints a new one.",
                id="broadcast.E002",
            )
        ]
    return []


@checks.register(TAG)
def operations_settings(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """BROADCAST_MAX_RATE, the retentions and BROADCAST_DISABLE_AFTER_HOURS must not be
    negative (0: off)."""
    errors: list[checks.CheckMessage] = []
    for key, variable in (
        ("MAX_RATE", "BROADCAST_MAX_RATE"),
        ("RETENTION_DAYS", "BROADCAST_RETENTION_DAYS"),
        ("FAILED_RETENTION_DAYS", "BROADCAST_FAILED_RETENTION_DAYS"),
        ("DISABLE_AFTER_HOURS", "BROADCAST_DISABLE_AFTER_HOURS"),
    ):
        value = broadcast_setting(key, 0)
        if value < 0:
            errors.append(
                checks.Error(
                    f"{variable} must be 0 (off) or positive, not {value:g}.",
                    id="broadcast.E003",
                )
            )
    return errors


@checks.register(TAG)
def alerts_signed(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The alerts to BROADCAST_ALERT_URL are signed with BROADCAST_SIGNING_SECRETS: without
    them, say that they go unsigned (a receiver could not tell them from a forgery)."""
    if broadcast_setting("ALERT_URL", "") and not broadcast_setting("SIGNING_SECRETS", []):
        return [
            checks.Warning(
                "BROADCAST_ALERT_URL is set but BROADCAST_SIGNING_SECRETS is empty: the "
                "alerts sent there (and the built-in destination's deliveries) go unsigned.",
                hint="Set BROADCAST_SIGNING_SECRETS (python manage.py broadcast_secret prints "
                "a new one) and give the secret to the alerts' receiver.",
                id="broadcast.W001",
            )
        ]
    return []
