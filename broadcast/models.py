"""The transactional outbox: one row per event to deliver to the counter server.

A row is written in the same transaction as the change it describes, so an
event exists exactly when its change committed. Dispatchers claim due rows by
pushing `available_at` forward by a lease: a dispatcher that dies simply lets
the lease expire and the row becomes due again for any other dispatcher.
"""

import json
import uuid
from dataclasses import dataclass

from django.db import models
from django.db.models import Count, Min
from django.utils import timezone


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


@dataclass(frozen=True)
class Backlog:
    """What is left to deliver, as /ready and /metrics report it."""

    pending: int
    failed: int
    oldest_pending_age_seconds: float  # 0 when nothing is pending


class EventQuerySet(models.QuerySet):
    def pending(self) -> "EventQuerySet":
        return self.filter(status=Status.PENDING)

    def due(self, now=None) -> "EventQuerySet":
        """Pending events whose next attempt (or expired lease) has come, longest waiting first."""
        return (
            self.pending()
            .filter(available_at__lte=now or timezone.now())
            .order_by("available_at", "id")
        )

    def failed(self) -> "EventQuerySet":
        return self.filter(status=Status.FAILED)

    def delivered(self) -> "EventQuerySet":
        return self.filter(status=Status.DELIVERED)

    def backlog(self) -> Backlog:
        """Pending and failed counts and the oldest pending event's age, in two indexed queries."""
        pending = self.pending().aggregate(count=Count("id"), oldest=Min("created_at"))
        oldest = pending["oldest"]
        age = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
        return Backlog(pending["count"], self.failed().count(), age)


class Event(models.Model):
    # Sent as the Idempotency-Key header, the same on every retry.
    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    # Next attempt; while a dispatcher holds the event, the end of its lease.
    available_at = models.DateTimeField(default=timezone.now)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        indexes = [
            # Serves the dispatchers' claim, `due()`: an equality on status, a
            # range on available_at, rows already in claim order. Not a partial
            # index on pending rows: SQLite cannot use one when the status is a
            # bound parameter, as Django passes it.
            models.Index(fields=["status", "available_at", "id"], name="broadcast_event_due_idx"),
            models.Index(fields=["status", "delivered_at"], name="broadcast_event_status_idx"),
        ]

    def __str__(self) -> str:
        """What happened and how its delivery stands: "create by alice, delivered".

        The counter server's payload, {"user": <id>, "action": ...}, names the
        user by id; a queryset annotated with `username` (the admin's) gives the
        name. Any other payload is shown as compact JSON.
        """
        return f"{self.summary}, {self.get_status_display().lower()}"

    @property
    def summary(self) -> str:
        """The payload in a few words: "create by alice" ("by user 3" without a name)."""
        payload = self.payload
        if not (isinstance(payload, dict) and payload.keys() == {"user", "action"}):
            return json.dumps(payload, separators=(",", ":"))
        username = getattr(self, "username", None)
        return f"{payload['action']} by {username or 'user ' + str(payload['user'])}"


class Control(models.Model):
    """The broadcast's one switch, a single row (pk 1): paused or not, why and since when.

    Every dispatcher reads it (at most once a second) and claims nothing while
    it is paused; `broadcast/control.py` is the API. No row means not paused.
    """

    SINGLETON = 1

    paused = models.BooleanField(default=False)
    reason = models.TextField(blank=True, default="")
    since = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("pause_broadcast", "Can pause and resume the broadcast")]

    def __str__(self) -> str:
        return f"paused: {self.reason}" if self.paused else "running"
