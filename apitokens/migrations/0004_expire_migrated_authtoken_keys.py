"""Give the tokens migrated from DRF's authtoken (0002) an expiry: 90 days from now.

They were kept without one, as before, but their keys were stored in clear until
0002, so every backup and replica taken before it holds them: left valid for
ever, they would let such a copy act as their users for ever, the leak the
hashed tokens exist to end. 90 days is a new token's default expiry
(apitokens/services.py); their clients have that long to move to a new token
(`POST /api/tokens`). A client that must go on longer unattended gets a new token
from an administrator, who says how long it lasts, or that it never expires
(`manage.py api_token create USER --name ... --never-expires`). Tokens of ours (the
`rft_` prefix) are left as they are.
"""

import datetime

from django.db import migrations
from django.utils import timezone

GRACE = datetime.timedelta(days=90)
PREFIX = "rft_"  # apitokens/text.py: the tokens this app makes


def expire_migrated_keys(apps, schema_editor):
    ApiToken = apps.get_model("apitokens", "ApiToken")
    migrated = ApiToken.objects.using(schema_editor.connection.alias).filter(
        expires__isnull=True
    ).exclude(prefix__startswith=PREFIX)
    migrated.update(expires=timezone.now() + GRACE)


class Migration(migrations.Migration):

    dependencies = [
        ("apitokens", "0003_redact_authtoken_keys_in_admin_log"),
    ]

    operations = [
        migrations.RunPython(expire_migrated_keys, migrations.RunPython.noop, elidable=False),
    ]
