"""Give the tokens migrated from DRF's authtoken (0002) an expiry: 90 days from now.

They were kept without one, as before, but their keys were stored in clear until
0002, so every backup and replica taken before it holds them: left valid for
ever, they would let such a copy act as their users for ever, the leak the
hashed tokens exist to end. 90 days is a new token's default expiry
(apitokens/services.py); their users have that long to make new ones (`POST
/api/tokens` with their password, or in the admin). A client that must go on longer
unattended gets a new token from an administrator, who says how long it lasts, or
that it never expires (`manage.py api_token create USER --name ... --never-expires`).
Tokens of ours (the `rft_` prefix; a migrated key's first 8 characters are hexadecimal)
are left as they are. Reversing takes the expiry away again: only this migration
gives one to a migrated key.
"""

import datetime

from django.db import migrations
from django.utils import timezone

GRACE = datetime.timedelta(days=90)
PREFIX = "rft_"  # apitokens/text.py: the tokens this app makes


def migrated_keys(apps, schema_editor):
    ApiToken = apps.get_model("apitokens", "ApiToken")
    tokens = ApiToken.objects.using(schema_editor.connection.alias)
    return tokens.exclude(prefix__startswith=PREFIX)


def expire_migrated_keys(apps, schema_editor):
    migrated_keys(apps, schema_editor).filter(expires=None).update(
        expires=timezone.now() + GRACE
    )


def keep_migrated_keys(apps, schema_editor):
    migrated_keys(apps, schema_editor).update(expires=None)


class Migration(migrations.Migration):

    dependencies = [
        ("apitokens", "0003_redact_authtoken_keys_in_admin_log"),
    ]

    operations = [
        migrations.RunPython(expire_migrated_keys, keep_migrated_keys, elidable=False),
    ]
