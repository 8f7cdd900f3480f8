"""Deleting delivered deliveries once they are old, and their events and attempts, so the
outbox stays small.

`BROADCAST_RETENTION_DAYS` (settings.BROADCAST["RETENTION_DAYS"], default 7;
0 keeps everything) is the age; the dispatcher calls `prune_delivered` at
start and then now and then, `manage.py broadcast_prune` once. Pending and
failed deliveries are never deleted, whatever their age, and neither is an
event one of them still needs. A delivery's attempts (the attempt log) go
with it; a failed delivery's attempts are deleted after
`BROADCAST_FAILED_RETENTION_DAYS` (default 30), the delivery kept. A pending
delivery's attempts are kept, whatever their age.

Each batch is its own short transaction, so pruning a large backlog never
holds a long lock: on SQLite each batch queues on the write lock like any
other writer and lets the others in between; on PostgreSQL the rows of one
batch are locked only for that batch.
"""

import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from broadcast.conf import broadcast_setting
from broadcast.models import Attempt, Delivery, Event, Status


def prune_delivered(
    *,
    days: float,
    batch_size: int = 2000,
    now: datetime.datetime | None = None,
    using: str = "default",
    failed_attempts_days: float | None = None,
) -> int:
    """Delete the deliveries delivered more than `days` ago with their attempts, then the
    events created more than `days` ago that no delivery is left to; return how many events.
    First, the attempts of failed deliveries made more than `failed_attempts_days` ago
    (default: BROADCAST_FAILED_RETENTION_DAYS).

    `days <= 0` deletes nothing. At most `batch_size` rows per transaction.
    """
    if days <= 0:
        return 0
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size!r}")
    now = now or timezone.now()
    if failed_attempts_days is None:
        failed_attempts_days = failed_retention_days()
    if failed_attempts_days > 0:
        failed_cutoff = now - datetime.timedelta(days=failed_attempts_days)
        old_failures = Attempt.objects.using(using).filter(
            delivery__status=Status.FAILED, started_at__lt=failed_cutoff
        )
        _delete_in_batches(old_failures, batch_size)
    cutoff = now - datetime.timedelta(days=days)
    deliveries = Delivery.objects.using(using)
    _delete_in_batches(deliveries.delivered().filter(delivered_at__lt=cutoff), batch_size)
    unneeded = Event.objects.using(using).filter(
        ~Exists(deliveries.filter(event=OuterRef("pk"))), created_at__lt=cutoff
    )
    return _delete_in_batches(unneeded, batch_size)


def _delete_in_batches(rows: QuerySet, batch_size: int) -> int:
    """Delete `rows`, `batch_size` at a time, each batch in its own transaction."""
    total = 0
    while True:
        with transaction.atomic(using=rows.db):
            ids = list(rows.order_by().values_list("pk", flat=True)[:batch_size])
            if ids:
                _, per_model = rows.model.objects.using(rows.db).filter(pk__in=ids).delete()
                total += per_model.get(rows.model._meta.label, 0)
        if len(ids) < batch_size:
            return total


def failed_retention_days() -> float:
    """How long failed deliveries' attempts are kept (BROADCAST_FAILED_RETENTION_DAYS)."""
    return float(broadcast_setting("FAILED_RETENTION_DAYS", 30.0))


def retention_days() -> float:
    """The configured age (BROADCAST_RETENTION_DAYS); 0 keeps every event."""
    return float(broadcast_setting("RETENTION_DAYS", 7.0))
