"""Writing events into the outbox, inside the caller's transaction.

The caller owns the transaction: the event commits or rolls back with the
change it describes. The dispatchers hear of it at commit (and never of a
rolled-back one): on PostgreSQL through the NOTIFY that a trigger on the
outbox (migration 0004) sends in the inserting statement, on SQLite through
the doorbell rung once the transaction has committed (broadcast/doorbell.py).
"""

from django.db import connections

from broadcast.doorbell import ring_at_commit
from broadcast.models import Event

NOTIFY_CHANNEL = "broadcast_event"


def event_enqueue(*, payload: dict, using: str = "default") -> Event:
    """Store one event to be delivered to the counter server."""
    event = Event.objects.using(using).create(payload=payload)
    ring_at_commit(using)
    return event


def events_enqueue(*, payloads: list[dict], using: str = "default") -> list[Event]:
    """Store many events at once (one INSERT per batch)."""
    if not payloads:
        return []
    events = Event.objects.using(using).bulk_create(
        [Event(payload=payload) for payload in payloads], batch_size=1000
    )
    ring_at_commit(using)
    return events


def wake_dispatchers(using: str = "default") -> None:
    """Tell the dispatchers that events are due, at the commit of the caller's transaction.

    For changes that make events due without inserting them (a release, a
    re-queue, a resume): inserts announce themselves (the trigger, the doorbell).
    """
    connection = connections[using]
    ring_at_commit(using)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
