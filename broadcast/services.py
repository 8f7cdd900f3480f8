"""Writing events into the outbox, inside the caller's transaction.

The caller owns the transaction: the event commits or rolls back with the
change it describes. On PostgreSQL a trigger on the outbox (migration 0004)
sends a NOTIFY in the inserting statement, which wakes the dispatchers at
commit (and never for a rolled-back transaction).
"""

from django.db import connections

from broadcast.models import Event

NOTIFY_CHANNEL = "broadcast_event"


def event_enqueue(*, payload: dict, using: str = "default") -> Event:
    """Store one event to be delivered to the counter server."""
    return Event.objects.using(using).create(payload=payload)


def events_enqueue(*, payloads: list[dict], using: str = "default") -> list[Event]:
    """Store many events at once (one INSERT per batch)."""
    if not payloads:
        return []
    return Event.objects.using(using).bulk_create(
        [Event(payload=payload) for payload in payloads], batch_size=1000
    )


def wake_dispatchers(using: str = "default") -> None:
    """Tell LISTENing dispatchers (PostgreSQL) that events are due, in the caller's transaction.

    For changes that make events due without inserting them (a release, a
    re-queue, a resume): inserts notify by themselves, through the trigger.
    """
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
