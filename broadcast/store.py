"""The dispatcher's database side: claim due events, record outcomes, release claims.

Synchronous Django ORM code, run by the dispatcher on one dedicated thread.
Transactions are short and never wait on the network: claim, then send outside
any transaction, then record. A dispatcher's round records the last outcomes
and claims the next events in one transaction (`exchange`), so on SQLite it
queues for the write lock once per round, not twice.
"""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from broadcast.client import Outcome, Result
from broadcast.models import Event, Status


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    key: str
    payload: dict
    attempts: int


def claim(*, owner: str, limit: int, lease: float) -> list[Claimed]:
    """Claim up to `limit` due events for `owner` until the lease runs out.

    A claim pushes `available_at` forward by the lease: if the owner dies, the
    event becomes due again when the lease expires. On PostgreSQL concurrent
    dispatchers skip each other's locked rows (FOR UPDATE SKIP LOCKED); on
    SQLite the IMMEDIATE transaction serialises claimers.
    """
    now = timezone.now()
    due = Event.objects.due(now)
    # A cheap read first: idle polling must not take SQLite's write lock.
    if not due.exists():
        return []
    with transaction.atomic(savepoint=False):
        rows = list(
            due.select_for_update(skip_locked=True).values_list("id", "key", "payload", "attempts")[
                :limit
            ]
        )
        if rows:
            Event.objects.filter(id__in=[row[0] for row in rows]).update(
                available_at=now + datetime.timedelta(seconds=lease), claimed_by=owner
            )
    return [Claimed(id, str(key), payload, attempts) for id, key, payload, attempts in rows]


def record(*, owner: str, outcomes: Iterable[tuple[Claimed, Outcome, float | None]]) -> None:
    """Store what happened to sent events: delivered, to retry (after a delay), or failed.

    Retries and failures only touch rows still claimed by `owner`, so a
    dispatcher whose lease ran out cannot undo another's delivery.
    """
    now = timezone.now()
    delivered = [c.id for c, outcome, _ in outcomes if outcome.result == Result.DELIVERED]
    unfinished = [item for item in outcomes if item[1].result != Result.DELIVERED]
    with transaction.atomic(savepoint=False):
        if delivered:
            Event.objects.filter(id__in=delivered).exclude(status=Status.DELIVERED).update(
                status=Status.DELIVERED,
                delivered_at=now,
                attempts=F("attempts") + 1,
                claimed_by="",
                last_error="",
            )
        if unfinished:
            _record_unfinished(owner, unfinished, now)


def _record_unfinished(owner: str, unfinished: list, now: datetime.datetime) -> None:
    """Retries (due again after their delay) and permanent failures, in one UPDATE."""
    still_mine = set(
        Event.objects.pending()
        .filter(claimed_by=owner, id__in=[claimed.id for claimed, _, _ in unfinished])
        .select_for_update()
        .values_list("id", flat=True)
    )
    rows = [
        Event(
            id=claimed.id,
            status=Status.PENDING if outcome.result == Result.RETRY else Status.FAILED,
            available_at=now + datetime.timedelta(seconds=delay or 0),
            # Still ours, so nobody changed it since the claim read it.
            attempts=claimed.attempts + 1,
            claimed_by="",
            last_error=outcome.error,
        )
        for claimed, outcome, delay in unfinished
        if claimed.id in still_mine
    ]
    Event.objects.bulk_update(
        rows, ["status", "available_at", "attempts", "claimed_by", "last_error"], batch_size=500
    )


def exchange(
    *,
    owner: str,
    outcomes: list[tuple[Claimed, Outcome, float | None]],
    limit: int,
    lease: float,
) -> list[Claimed]:
    """Record `outcomes`, then claim up to `limit` due events, in one transaction."""
    if not outcomes:
        return claim(owner=owner, limit=limit, lease=lease) if limit > 0 else []
    with transaction.atomic():
        record(owner=owner, outcomes=outcomes)
        return claim(owner=owner, limit=limit, lease=lease) if limit > 0 else []


def release(*, owner: str) -> int:
    """Make `owner`'s unfinished claims due again at once (clean shutdown)."""
    return (
        Event.objects.pending()
        .filter(claimed_by=owner)
        .update(available_at=timezone.now(), claimed_by="")
    )


def close() -> None:
    """Close this thread's database connection (the dispatcher's DB thread, at exit)."""
    connection.close()
