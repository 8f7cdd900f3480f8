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
from collections import Counter
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from broadcast.conf import broadcast_setting
from broadcast.models import Attempt, Delivery, Event, Status


@dataclass(frozen=True)
class Pruned:
    """What one pruning deleted."""

    deliveries: int = 0
    events: int = 0
    attempts: int = 0  # with their deliveries, and failed deliveries' old ones

    def __bool__(self) -> bool:
        return any((self.deliveries, self.events, self.attempts))


def prune_delivered(
    *,
    days: float,
    batch_size: int = 2000,
    now: datetime.datetime | None = None,
    using: str = "default",
    failed_attempts_days: float | None = None,
) -> Pruned:
    """Delete the deliveries delivered more than `days` ago with their attempts, then the
    events created more than `days` ago that no delivery is left to. First, the attempts of
    failed deliveries made more than `failed_attempts_days` ago (default:
    BROADCAST_FAILED_RETENTION_DAYS).

    `days <= 0` deletes nothing. At most `batch_size` rows per transaction.
    """
    if days <= 0:
        return Pruned()
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size!r}")
    now = now or timezone.now()
    deleted: Counter[str] = Counter()
    if failed_attempts_days is None:
        failed_attempts_days = failed_retention_days()
    if failed_attempts_days > 0:
        failed_cutoff = now - datetime.timedelta(days=failed_attempts_days)
        old_failures = Attempt.objects.using(using).filter(
            delivery__status=Status.FAILED, started_at__lt=failed_cutoff
        )
        deleted += _delete_in_batches(old_failures, batch_size)
    cutoff = now - datetime.timedelta(days=days)
    deliveries = Delivery.objects.using(using)
    delivered = deliveries.delivered().filter(delivered_at__lt=cutoff)
    deleted += _delete_in_batches(delivered, batch_size)
    unneeded = Event.objects.using(using).filter(
        ~Exists(deliveries.filter(event=OuterRef("pk"))), created_at__lt=cutoff
    )
    deleted += _delete_in_batches(unneeded, batch_size)
    return Pruned(
        deliveries=deleted[Delivery._meta.label],
        events=deleted[Event._meta.label],
        attempts=deleted[Attempt._meta.label],
    )


def _delete_in_batches(rows: QuerySet, batch_size: int) -> Counter[str]:
    """Delete `rows`, `batch_size` at a time, each batch in its own transaction; return how
    many rows of each model went (by its label), the cascade's included.

    Each batch locks its rows, and the rows its filter joins, before the cascade reads what
    refers to them, skipping those another transaction holds; so it never waits:
    - a destination's deletion locks its deliveries, then deletes their attempts
      (broadcast/destinations.py), and a batch of deliveries that deleted their attempts
      first would wait on it while it waited on them;
    - a failed delivery being resent or replayed is pending once that commits, and a
      pending delivery's attempts are kept: the batch of old failed attempts skips it.
    """
    total: Counter[str] = Counter()
    while True:
        with transaction.atomic(using=rows.db):
            batch = rows.order_by().select_for_update(skip_locked=True)
            ids = list(batch.values_list("pk", flat=True)[:batch_size])
            if ids:
                _, per_model = rows.model.objects.using(rows.db).filter(pk__in=ids).delete()
                total.update(per_model)
        if len(ids) < batch_size:
            return total


def failed_retention_days() -> float:
    """How long failed deliveries' attempts are kept (BROADCAST_FAILED_RETENTION_DAYS)."""
    return float(broadcast_setting("FAILED_RETENTION_DAYS", 30.0))


def retention_days() -> float:
    """The configured age (BROADCAST_RETENTION_DAYS); 0 keeps every event."""
    return float(broadcast_setting("RETENTION_DAYS", 7.0))
