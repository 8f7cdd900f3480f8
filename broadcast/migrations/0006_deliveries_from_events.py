"""Every event written before destinations becomes a delivery to the built-in destination.

Until now an event kept its own delivery state (status, next attempt, lease,
attempts, last error, delivery time), all of it to COUNTER_SERVER_URL. Each
event gets one delivery to the built-in destination carrying that state as it
is: a pending event stays pending, due when it was (a lease held by a
dispatcher of the previous release runs out as it would have), a failed one
stays failed and can be re-queued, a delivered one is kept for retention.
The built-in destination is made here if it is not there yet, as
`sync_builtin_destination` makes it (disabled when COUNTER_SERVER_URL is empty,
so that the pending deliveries wait for it). The next migration drops the
event's own state.

Backwards, each event takes back its built-in delivery's state.
"""

from django.conf import settings
from django.db import migrations

BUILTIN_NAME = "counter-server"  # broadcast.models.BUILTIN_NAME, as of this migration
NO_URL_REASON = "COUNTER_SERVER_URL is empty: no built-in destination."
STATE = ("status", "available_at", "claimed_by", "attempts", "last_error", "delivered_at")


def builtin(apps, using: str):
    Destination = apps.get_model("broadcast", "Destination")
    row = Destination.objects.using(using).filter(managed=True).first()
    if row is None:
        url = settings.COUNTER_SERVER_URL
        row = Destination.objects.using(using).create(
            name=BUILTIN_NAME, url=url or "http://localhost/", managed=True, enabled=bool(url),
            disabled_reason="" if url else NO_URL_REASON,
        )  # fmt: skip
    return row


def forwards(apps, schema_editor):
    using = schema_editor.connection.alias
    Event = apps.get_model("broadcast", "Event")
    if not Event.objects.using(using).exists():
        return
    destination = builtin(apps, using)
    columns = ", ".join(STATE)
    schema_editor.execute(
        f"""INSERT INTO broadcast_delivery (event_id, destination_id, {columns}, created_at)
        SELECT id, %s, {columns}, created_at FROM broadcast_event e
        WHERE NOT EXISTS (SELECT 1 FROM broadcast_delivery d
                          WHERE d.event_id = e.id AND d.destination_id = %s)""",  # noqa: S608
        params=[destination.pk, destination.pk],
    )


def backwards(apps, schema_editor):
    using = schema_editor.connection.alias
    Destination = apps.get_model("broadcast", "Destination")
    row = Destination.objects.using(using).filter(managed=True).first()
    if row is None:
        return
    for column in STATE:
        schema_editor.execute(
            f"""UPDATE broadcast_event SET {column} = (
                SELECT d.{column} FROM broadcast_delivery d
                WHERE d.event_id = broadcast_event.id AND d.destination_id = %s)
            WHERE EXISTS (SELECT 1 FROM broadcast_delivery d
                          WHERE d.event_id = broadcast_event.id AND d.destination_id = %s)""",  # noqa: S608
            params=[row.pk, row.pk],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("broadcast", "0005_destinations"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
