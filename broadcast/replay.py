"""Replaying failed events: making them pending and due again.

Used by `manage.py broadcast_requeue` (a time window) and the admin's
re-queue action (a selection). Attempts are kept (the backoff goes on from
where it was) and so is the last error, until the next attempt records its own.
"""

import datetime

from django.db import transaction
from django.utils import timezone

from broadcast.models import Event, EventQuerySet, Status
from broadcast.services import wake_dispatchers


def requeue_failed(
    *,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    events: EventQuerySet | None = None,
    dry_run: bool = False,
    using: str = "default",
) -> int:
    """Make failed events created in [since, until) pending and due now; return how many.

    Either end may be None (open). `events` narrows it to a selection (the
    admin's). With `dry_run`, count them and change nothing.
    """
    chosen = (events if events is not None else Event.objects).using(using).failed()
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
