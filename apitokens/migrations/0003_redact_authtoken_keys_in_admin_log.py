"""Remove DRF authtoken's clear-text keys from the admin's log.

While `rest_framework.authtoken` was installed, its admin page was registered,
and every token added, changed or deleted there left a LogEntry whose text
(`object_repr`, the token's `__str__`) is the key itself: `authtoken.tokenproxy`
entries since DRF 3.12 (their `object_id` is the user's id), `authtoken.token`
ones before (their `object_id` is the key too). Migration 0002 keeps those keys
working (hashed), so the log was a clear copy of live credentials. The entries
stay, as the record of who did what and when; their key is replaced. So are the
keys of entries whose content type was deleted since (`remove_stale_contenttypes`
sets it to NULL): any such entry whose text is a key's 40 hexadecimal characters.

Idempotent, and nothing to do on a database that never had authtoken.
"""

from django.db import migrations
from django.db.models import Q

REDACTED = "API token (key removed by apitokens.0003)"
KEY = r"^[0-9a-f]{40}$"  # a DRF authtoken key


def redact_authtoken_keys(apps, schema_editor):
    alias = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    LogEntry = apps.get_model("admin", "LogEntry")
    entries = LogEntry.objects.using(alias)
    token_types = ContentType.objects.using(alias).filter(app_label="authtoken")
    keyed = Q(content_type__in=token_types) | Q(content_type=None, object_repr__regex=KEY)
    entries.filter(keyed).update(object_repr=REDACTED)
    keyed_by_id = token_types.filter(model="token")  # the key was its primary key
    entries.filter(content_type__in=keyed_by_id).update(object_id=None)


class Migration(migrations.Migration):

    dependencies = [
        ("apitokens", "0002_hash_authtoken_keys"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(redact_authtoken_keys, migrations.RunPython.noop, elidable=False),
    ]
