"""Replaying failed deliveries: making them pending and due again.

Used by `manage.py broadcast_requeue` (a time window) and the admin's
re-queue action (a selection). Attempts are kept (the backoff goes on from
where it was) and so is the last error, until the next attempt records its own.
"""

import datetime

from django.db import transaction
from django.utils import timezone

from broadcast.models import Delivery, DeliveryQuerySet, Destination, Status
from broadcast.services import wake_dispatchers


def requeue_failed(
    *,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    deliveries: DeliveryQuerySet | None = None,
    destination: Destination | None = None,
    dry_run: bool = False,
    using: str = "default",
) -> int:
    """Make failed deliveries of events created in [since, until) pending and due now;
    return how many.

    Either end may be None (open). `deliveries` narrows it to a selection (the
    admin's), `destination` to one destination's. With `dry_run`, count them
    and change nothing.
    """
    chosen = (deliveries if deliveries is not None else Delivery.objects).using(using).failed()
    if destination is not None:
        chosen = chosen.filter(destination=destination)
    if since is not None:
        chosen = chosen.filter(created_at__gte=since)
    if until is not None:
        chosen = chosen.filter(created_at__lt=until)
    if dry_run:
        return chosen.count()
    with transaction.atomic(using=using):  # on SQLite: queued on the write lock
        requeued = chosen.update(status=Status.PENDING, available_at=timezone.now(), claimed_by="")
        if requeued:
            wake_dispatchers(using)
    return requeued
