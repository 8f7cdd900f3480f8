"""Remove DRF authtoken's clear-text keys from the admin's log.

While `rest_framework.authtoken` was installed, its admin page was registered,
and every token added, changed or deleted there left a LogEntry whose
`object_id` (the token's primary key) and `object_repr` (its `__str__`) are the
key itself. Migration 0002 keeps those keys working (hashed), so the log was a
clear copy of live credentials. The entries stay, as the record of who did what
and when; their key is replaced.

Idempotent, and nothing to do on a database that never had authtoken.
"""

from django.db import migrations

REDACTED = "API token (key removed by apitokens.0003)"


def redact_authtoken_keys(apps, schema_editor):
    alias = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    LogEntry = apps.get_model("admin", "LogEntry")
    token_types = ContentType.objects.using(alias).filter(app_label="authtoken")
    LogEntry.objects.using(alias).filter(content_type__in=token_types).update(
        object_id=None, object_repr=REDACTED
    )


class Migration(migrations.Migration):

    dependencies = [
        ("apitokens", "0002_hash_authtoken_keys"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(redact_authtoken_keys, migrations.RunPython.noop, elidable=False),
    ]
