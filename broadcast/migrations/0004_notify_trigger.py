"""On PostgreSQL, a trigger sends the dispatchers' NOTIFY for every INSERT into the outbox.

Inside the INSERT's own statement, so a web request no longer makes a round trip
of its own for it (`SELECT pg_notify`), and once per statement, so a bulk
insert notifies once. Other databases have no NOTIFY: nothing to do there.
"""

from django.db import migrations

FUNCTION = "broadcast_event_notify"
CHANNEL = "broadcast_event"  # broadcast.services.NOTIFY_CHANNEL, as of this migration

CREATE = f"""
CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER {FUNCTION} AFTER INSERT ON broadcast_event
    FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}();
"""

DROP = f"""
DROP TRIGGER IF EXISTS {FUNCTION} ON broadcast_event;
DROP FUNCTION IF EXISTS {FUNCTION}();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("broadcast", "0003_control"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP), elidable=False),
    ]
