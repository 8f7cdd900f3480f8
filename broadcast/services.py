"""Writing events into the outbox, inside the caller's transaction.

The caller owns the transaction: the event commits or rolls back with the
change it describes, and so do its deliveries, one per enabled destination
subscribed to its action at that moment (the fan-out: one INSERT ... SELECT
from the destinations per call, whatever their number; broadcast/queries.py).
The dispatchers hear of it at commit (and never of a rolled-back one): on
PostgreSQL through the NOTIFY that a trigger on the outbox (migration 0004)
sends in the inserting statement, on SQLite through the doorbell rung once the
transaction has committed (broadcast/doorbell.py).
"""

import json
from collections.abc import Sequence

from django.db import connections

from broadcast import queries
from broadcast.doorbell import ring_at_commit
from broadcast.models import Action, Event, Status

NOTIFY_CHANNEL = "broadcast_event"


def event_enqueue(
    *,
    payload: dict,
    action: str,
    envelope: dict | None = None,
    subject: int | None = None,
    using: str = "default",
) -> Event:
    """Store one event of `action` ("create" or "delete") and its deliveries: two INSERTs.

    `payload` is the `counter` format's body, `envelope` the `event` format's,
    `subject` the id of what changed.
    """
    action = Action(action)
    event = Event.objects.using(using).create(payload=payload, envelope=envelope, subject=subject)
    _fan_out(event, action, using)
    return event


def events_enqueue(
    *,
    payloads: list[dict],
    action: str,
    envelopes: Sequence[dict | None] | None = None,
    subjects: Sequence[int | None] | None = None,
    using: str = "default",
) -> list[Event]:
    """Store many events of one `action` at once (one INSERT per batch of a thousand) and
    their deliveries (one INSERT ... SELECT for them all).

    `envelopes` and `subjects`, when given, go with `payloads` one for one.
    """
    action = Action(action)
    if not payloads:
        return []
    envelopes = [None] * len(payloads) if envelopes is None else list(envelopes)
    subjects = [None] * len(payloads) if subjects is None else list(subjects)
    if not len(payloads) == len(envelopes) == len(subjects):
        raise ValueError("payloads, envelopes and subjects must have one entry per event")
    events = Event.objects.using(using).bulk_create(
        [
            Event(payload=payload, envelope=envelope, subject=subject)
            for payload, envelope, subject in zip(payloads, envelopes, subjects, strict=True)
        ],
        batch_size=1000,
    )
    connection = connections[using]
    ids = [event.pk for event in events]
    # The events' ids: an array on PostgreSQL, a JSON array on SQLite.
    id_list: list[int] | str = ids
    statement = queries.POSTGRESQL_FAN_OUT_MANY[action]
    if connection.vendor != "postgresql":
        id_list, statement = json.dumps(ids), queries.SQLITE_FAN_OUT_MANY[action]
    with connection.cursor() as cursor:
        cursor.execute(statement, [Status.PENDING, id_list])
    ring_at_commit(using)
    return events


def announce(alert: dict, *, using: str = "default") -> Event:
    """Store one of the broadcast's own alerts (`{"type": ..., ...}`), delivered, as any
    event, to the destinations subscribed to alerts (BROADCAST_ALERT_URL's): signed,
    retried, on the record. Both formats' body is the alert itself."""
    event = Event.objects.using(using).create(payload=alert, envelope=alert)
    _fan_out(event, queries.ALERT, using)
    return event


def _fan_out(event: Event, kind: str, using: str) -> None:
    """`event`'s deliveries, to the destinations subscribed to `kind` (an action, or alerts)."""
    connection = connections[using]
    created = connection.ops.adapt_datetimefield_value(event.created_at)
    statements = queries.POSTGRESQL_FAN_OUT if connection.vendor == "postgresql" else (
        queries.SQLITE_FAN_OUT)  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(statements[kind], [event.pk, Status.PENDING, created, created])
    ring_at_commit(using)


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
