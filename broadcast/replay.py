"""Replaying deliveries: making failed (or delivered) ones pending and due again, and resending
one.

Used by `manage.py broadcast_requeue` (a time window), the admin's re-queue
action (a selection) and the API (`POST /api/destinations/<id>/replay` and
`.../deliveries/<id>/resend`, broadcast/deliveries_api.py). Attempts are kept
(the backoff goes on from where it was, and the attempt log keeps every earlier
attempt) and so is the last error, until the next attempt records its own. A
delivered delivery sent again loses its `delivered_at` until it is delivered
again.
"""

import datetime

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from broadcast.conf import broadcast_setting
from broadcast.models import Delivery, DeliveryQuerySet, Destination, Status
from broadcast.services import wake_dispatchers

DEFAULT_REPLAY_MAX = 100_000
LOCK_BATCH = 10_000  # the rows a replay's locking read fetches at a time


class Replayed(models.TextChoices):
    """Which deliveries a replay sends again. Pending ones are queued already: never chosen."""

    FAILED = "failed", "failed"
    DELIVERED = "delivered", "delivered"
    ALL = "all", "failed and delivered"


REPLAYED_STATUSES = {
    Replayed.FAILED: [Status.FAILED],
    Replayed.DELIVERED: [Status.DELIVERED],
    Replayed.ALL: [Status.FAILED, Status.DELIVERED],
}


class TooManyToReplay(Exception):
    """More deliveries match than a call may replay (BROADCAST_REPLAY_MAX)."""

    def __init__(self, count: int, limit: int) -> None:
        self.count, self.limit = count, limit
        super().__init__(
            f"{count} deliveries match, more than BROADCAST_REPLAY_MAX ({limit}) a call: "
            "replay a shorter window at a time."
        )


def replay_max() -> int:
    """BROADCAST_REPLAY_MAX: the most deliveries one API call replays (default 100,000)."""
    return int(broadcast_setting("REPLAY_MAX", DEFAULT_REPLAY_MAX))


def replay(
    *,
    status: str = Replayed.FAILED,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    deliveries: DeliveryQuerySet | None = None,
    destination: Destination | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    using: str = "default",
) -> int:
    """Make the deliveries in `status` (a `Replayed`: failed, delivered or both) of events
    created in [since, until) pending and due now; return how many.

    Either end may be None (open). `deliveries` narrows it to a selection (the
    admin's), `destination` to one destination's. With `dry_run`, count them and
    change nothing. With `limit`, more than `limit` of them raise TooManyToReplay
    and change nothing: counted first, in the transaction that re-queues them.
    """
    chosen = (deliveries if deliveries is not None else Delivery.objects).using(using)
    chosen = chosen.filter(status__in=REPLAYED_STATUSES[Replayed(status)])
    if destination is not None:
        chosen = chosen.filter(destination=destination)
    if since is not None:
        chosen = chosen.filter(created_at__gte=since)
    if until is not None:
        chosen = chosen.filter(created_at__lt=until)
    if dry_run:
        count = chosen.count()
        if limit is not None and count > limit:
            raise TooManyToReplay(count, limit)
        return count
    with transaction.atomic(using=using):  # on SQLite: queued on the write lock
        # Locked first, in primary-key order, as a destination's deletion locks its
        # deliveries (broadcast/destinations.py): the two never wait on each other in a
        # circle. (SQLite's write lock already orders every writer.) Counted as locked.
        locked = chosen.order_by("pk").select_for_update(of=("self",)).values_list("pk", flat=True)
        count = sum(1 for _ in locked.iterator(chunk_size=LOCK_BATCH))
        if limit is not None and count > limit:
            raise TooManyToReplay(count, limit)
        requeued = chosen.update(
            status=Status.PENDING, available_at=timezone.now(), claimed_by="", delivered_at=None
        )
        if requeued:
            wake_dispatchers(using)
    return requeued


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
    return how many (`replay` of the failed ones, with no limit)."""
    return replay(since=since, until=until, deliveries=deliveries, destination=destination,
                  dry_run=dry_run, using=using)  # fmt: skip


@transaction.atomic
def delivery_resend(*, delivery: Delivery) -> Delivery:
    """Send `delivery` again: pending and due now, whatever its status, attempts kept.

    A delivered one is sent again (the receiver deduplicates by the event's key,
    if it cares), its `delivered_at` cleared until then. A pending one waiting for
    its next attempt is due now; one a dispatcher holds (being sent) is left to
    it: taking it back would send it twice at once. Returns the row as it now is.
    """
    in_flight = Q(status=Status.PENDING) & ~Q(claimed_by="")
    now = timezone.now()
    chosen = Delivery.objects.filter(pk=delivery.pk).exclude(in_flight)
    resent = chosen.update(
        status=Status.PENDING, available_at=now, claimed_by="", delivered_at=None
    )
    if resent:
        wake_dispatchers()
    return Delivery.objects.select_related("event", "destination").get(pk=delivery.pk)
