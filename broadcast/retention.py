"""Deleting delivered events once they are old, so the outbox stays small.

`BROADCAST_RETENTION_DAYS` (settings.BROADCAST["RETENTION_DAYS"], default 7;
0 keeps everything) is the age; the dispatcher calls `prune_delivered` at
start and then now and then, `manage.py broadcast_prune` once. Pending and
failed events are never deleted, whatever their age.

Each batch is its own short transaction, so pruning a large backlog never
holds a long lock: on SQLite each batch queues on the write lock like any
other writer and lets the others in between; on PostgreSQL the rows of one
batch are locked only for that batch.
"""

import datetime

from django.db import transaction
from django.utils import timezone

from broadcast.conf import broadcast_setting
from broadcast.models import Event


def prune_delivered(
    *,
    days: float,
    batch_size: int = 2000,
    now: datetime.datetime | None = None,
    using: str = "default",
) -> int:
    """Delete delivered events whose `delivered_at` is more than `days` old, and their
    deliveries; return how many events.

    `days <= 0` deletes nothing. At most `batch_size` rows per transaction.
    """
    if days <= 0:
        return 0
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size!r}")
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    old = Event.objects.using(using).delivered().filter(delivered_at__lt=cutoff)
    total = 0
    while True:
        with transaction.atomic(using=using):
            ids = list(old.order_by().values_list("pk", flat=True)[:batch_size])
            if ids:
                # Their deliveries go with them (one DELETE more); only events are counted.
                _, per_model = old.filter(pk__in=ids).delete()
                total += per_model.get(Event._meta.label, 0)
        if len(ids) < batch_size:
            return total


def retention_days() -> float:
    """The configured age (BROADCAST_RETENTION_DAYS); 0 keeps every event."""
    return float(broadcast_setting("RETENTION_DAYS", 7.0))
