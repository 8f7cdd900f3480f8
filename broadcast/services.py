"""Writing events into the outbox, inside the caller's transaction.

The caller owns the transaction: the event commits or rolls back with the
change it describes. On PostgreSQL a NOTIFY sent in the same transaction wakes
the dispatchers at commit (and never for a rolled-back transaction).
"""

from django.db import connections

from broadcast.models import Event

NOTIFY_CHANNEL = "broadcast_event"


def event_enqueue(*, payload: dict, using: str = "default") -> Event:
    """Store one event to be delivered to the counter server."""
    event = Event.objects.using(using).create(payload=payload)
    _notify(using)
    return event


def events_enqueue(*, payloads: list[dict], using: str = "default") -> list[Event]:
    """Store many events at once (one INSERT per batch)."""
    if not payloads:
        return []
    events = Event.objects.using(using).bulk_create(
        [Event(payload=payload) for payload in payloads], batch_size=1000
    )
    _notify(using)
    return events


def _notify(using: str) -> None:
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
