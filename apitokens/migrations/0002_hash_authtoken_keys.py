"""Hash DRF authtoken's clear-text keys in place, then drop its table.

Each `authtoken_token` row becomes an ApiToken with the SHA-256 of its key,
the same owner and creation time, no expiry (as before; 0004 gives it one) and
the name DRF's `drf_create_token` made it with; the client holding the key keeps using it
unchanged (apitokens/text.py accepts the 40-hex form). The table, and so every
clear key, is then dropped, with authtoken's rows in django_migrations (the
app is no longer installed; were it installed again, it would start afresh).

A database that never had authtoken (a new one) has nothing to do. Reversing
keeps no key: they cannot be recovered from their hashes.
"""

import datetime
import hashlib

from django.db import migrations
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.dateparse import parse_datetime

LEGACY_TABLE = "authtoken_token"
LEGACY_NAME = "created by drf_create_token"


def _aware(value):
    """A datetime column's value as an aware datetime (SQLite gives text, in UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    return value


def hash_authtoken_keys(apps, schema_editor):
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote('key')}, {quote('created')}, {quote('user_id')} "
            f"FROM {quote(LEGACY_TABLE)}"
        )
        rows = cursor.fetchall()
    ApiToken = apps.get_model("apitokens", "ApiToken")
    ApiToken.objects.using(connection.alias).bulk_create(
        ApiToken(
            user_id=user_id,
            name=LEGACY_NAME,
            digest=hashlib.sha256(key.encode("ascii")).hexdigest(),
            prefix=key[:8],
            created=_aware(created),
            expires=None,
        )
        for key, created, user_id in rows
    )
    schema_editor.execute(f"DROP TABLE {quote(LEGACY_TABLE)}")
    MigrationRecorder(connection).migration_qs.filter(app="authtoken").delete()


class Migration(migrations.Migration):

    dependencies = [
        ("apitokens", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(hash_authtoken_keys, migrations.RunPython.noop, elidable=False),
    ]
