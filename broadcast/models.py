"""The transactional outbox: one row per event, and one delivery per destination subscribed to it.

An event is written in the same transaction as the change it describes, and so
are its deliveries, one per enabled destination subscribed to its action
(docs/broadcast.md, "Destinations"): a delivery exists exactly when its change
committed. The dispatchers claim, send and record deliveries; the event keeps
what they send.
"""

import json
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Count, Min, Q
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


class Event(models.Model):
    """What happened, once: the bodies every destination's delivery sends (broadcast/models.py
    `Delivery` keeps the state of each)."""

    # Sent as the Idempotency-Key header (and `webhook-id`), the same on every retry and
    # to every destination.
    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # The body of the `counter` format: {"user": <id>, "action": "create"|"delete"}.
    payload = models.JSONField()
    # The body of the `event` format, a Standard Webhooks envelope {"type", "timestamp",
    # "data"}, built by the caller; null for events written before destinations.
    envelope = models.JSONField(null=True, blank=True)
    # The id of what changed (a defect's), so that an operator can trace an event to it.
    subject = models.BigIntegerField(
        null=True, blank=True, help_text="The id of what changed (for a defect's event, its id)."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["subject"], name="broadcast_event_subject_idx"),
            # Retention deletes the events older than its cutoff that no delivery keeps.
            models.Index(fields=["created_at"], name="broadcast_event_created_idx"),
        ]

    def __str__(self) -> str:
        """What happened: "create by alice".

        The counter server's payload, {"user": <id>, "action": ...}, names the
        user by id; a queryset annotated with `username` (the admin's) gives the
        name. Any other payload is shown as compact JSON.
        """
        return self.summary

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


# --- Destinations ----------------------------------------------------------------------


class Action(models.TextChoices):
    """What an event announces; a destination subscribes to one or both."""

    CREATE = "create", "create"
    DELETE = "delete", "delete"


# The destination's boolean column that subscribes it to each action: the fan-out's
# WHERE (broadcast/queries.py) is then plain SQL on both databases.
ACTION_COLUMNS = {Action.CREATE: "on_create", Action.DELETE: "on_delete"}


class Format(models.TextChoices):
    """What a destination receives: the counter server's body, or the event's envelope."""

    COUNTER = "counter", "counter"
    EVENT = "event", "event"


Body = TypeVar("Body")


def formatted(format: str, counter: Body, envelope: Body | None) -> Body:
    """What a destination in `format` is sent of an event whose bodies are `counter` and
    `envelope` (as JSON text for the dispatcher, as data for the API): the envelope for
    `event`, when the event has one (those written before destinations have none)."""
    return envelope if format == Format.EVENT and envelope is not None else counter


NAME_MAX_LENGTH = 100
URL_MAX_LENGTH = 2000
# The built-in destination's name, kept in step with COUNTER_SERVER_URL (broadcast/destinations.py).
BUILTIN_NAME = "counter-server"
# The alerts destination's name, kept in step with BROADCAST_ALERT_URL (broadcast/destinations.py).
ALERTS_NAME = "alerts"


def validate_http_url(value: str) -> None:
    """An absolute http or https URL with a host, which may be one label (`http://counter:8888/`).

    Django's URLValidator would refuse a service name without a dot, the usual
    host of a consumer beside us in a container network.
    """
    message = "Enter an absolute http or https URL, such as https://example.com/hooks."
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError(message, code="invalid")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise ValidationError(message, code="invalid") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(message, code="invalid")


class HttpURLField(models.URLField):
    """A URLField whose only validation is `validate_http_url`, with a plain text box in forms.

    forms.URLField would prefix a URL without a scheme with one (and warn about
    which one until Django 6.0): a destination's URL is taken as written or refused.
    """

    default_validators = [validate_http_url]

    def formfield(
        self,
        form_class: type[forms.Field] | None = None,
        choices_form_class: type[forms.ChoiceField] | None = None,
        **kwargs: Any,
    ) -> forms.Field | None:
        # CharField's form field, a forms.CharField, where URLField's is a forms.URLField.
        return models.CharField.formfield(
            self,
            form_class=form_class,
            choices_form_class=choices_form_class,
            **{"widget": forms.URLInput, **kwargs},
        )


class DestinationQuerySet(models.QuerySet):
    def subscribed(self, action: str) -> "DestinationQuerySet":
        """The destinations an event of `action` fans out to: enabled and subscribed to it.

        The fan-out's INSERT ... SELECT (broadcast/queries.py) says the same in SQL;
        tests/broadcast/test_fanout.py checks that both select the same rows.
        """
        return self.filter(enabled=True, **{ACTION_COLUMNS[Action(action)]: True})

    def builtin(self) -> "DestinationQuerySet":
        """The built-in destination (COUNTER_SERVER_URL's), if there is one."""
        return self.filter(managed=True, on_alert=False)

    def with_pending(self) -> "DestinationQuerySet":
        """Each destination with `pending`, its pending deliveries' count (one query)."""
        return self.annotate(
            pending=Count("deliveries", filter=Q(deliveries__status=Status.PENDING))
        )

    def with_backlog(self) -> "DestinationQuerySet":
        """Each destination with `pending` and `failed`, its deliveries' counts, and
        `oldest_pending`, the oldest pending one's creation (None: none), in one query."""
        pending, failed = Q(deliveries__status=Status.PENDING), Q(deliveries__status=Status.FAILED)
        return self.annotate(
            pending=Count("deliveries", filter=pending),
            failed=Count("deliveries", filter=failed),
            oldest_pending=Min("deliveries__created_at", filter=pending),
        )


class Destination(models.Model):
    """Where events are delivered: a URL, the actions it subscribes to, the body it takes."""

    name = models.CharField(max_length=NAME_MAX_LENGTH, unique=True)
    url = HttpURLField(max_length=URL_MAX_LENGTH)
    on_create = models.BooleanField("create", default=True)
    on_delete = models.BooleanField("delete", default=True)
    # The broadcast's own alerts (a destination disabled: broadcast/services.py `announce`),
    # which only the alerts destination of BROADCAST_ALERT_URL receives.
    on_alert = models.BooleanField("alerts", default=False, editable=False)
    format = models.CharField(max_length=16, choices=Format, default=Format.COUNTER)
    enabled = models.BooleanField(default=True)
    # Deliveries per second to it from every dispatcher together; 0: unlimited.
    max_rate = models.FloatField(default=0.0, validators=[MinValueValidator(0.0)])
    paused = models.BooleanField(default=False)
    paused_reason = models.TextField(blank=True, default="")
    # Why it was disabled (by an operator, by a 410 Gone): empty while enabled.
    disabled_reason = models.TextField(blank=True, default="")
    # Since when every attempt to it has failed, and how many have (None, 0: its last
    # attempt succeeded): the dispatchers disable it after BROADCAST_DISABLE_AFTER_HOURS.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    failing_attempts = models.PositiveIntegerField(default=0, editable=False)
    # The last warning logged on the way to disabling it: a percentage of that time.
    failing_warned = models.PositiveSmallIntegerField(default=0, editable=False)
    # The built-in destination, kept in step with COUNTER_SERVER_URL: its name and
    # URL come from the settings, its signing secrets are BROADCAST_SIGNING_SECRETS.
    managed = models.BooleanField(
        default=False,
        editable=False,
        help_text="The built-in destination, kept in step with COUNTER_SERVER_URL: its name "
        "and URL are the settings', its signing secrets BROADCAST_SIGNING_SECRETS.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = DestinationQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(on_create=True) | Q(on_delete=True) | Q(on_alert=True),
                name="broadcast_destination_subscribed",
                violation_error_message="A destination subscribes to create, delete or both.",
            ),
            models.CheckConstraint(
                condition=Q(max_rate__gte=0), name="broadcast_destination_max_rate"
            ),
            # One built-in destination (COUNTER_SERVER_URL), one of alerts (BROADCAST_ALERT_URL).
            models.UniqueConstraint(
                fields=["on_alert"], condition=Q(managed=True), name="broadcast_destination_builtin"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def actions(self) -> list[str]:
        """The actions it subscribes to, in the order of `Action`."""
        subscribed = {Action.CREATE: self.on_create, Action.DELETE: self.on_delete}
        return [str(action) for action, on in subscribed.items() if on]

    @actions.setter
    def actions(self, actions) -> None:
        chosen = {Action(action) for action in actions}
        self.on_create, self.on_delete = Action.CREATE in chosen, Action.DELETE in chosen


class DestinationSecret(models.Model):
    """A destination's Standard Webhooks signing secret (`whsec_` + base64 of 32 random bytes).

    Kept as written, since it signs: shown once, in the answer that made it.
    The current one has no `expires_at`; rotating gives the previous current one
    an end (BROADCAST_SECRET_OVERLAP_HOURS later), until which both sign.
    """

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="secrets")
    secret = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.destination_id}: signing secret of {self.created_at:%Y-%m-%d %H:%M}"


class DeliveryQuerySet(models.QuerySet):
    def pending(self) -> "DeliveryQuerySet":
        return self.filter(status=Status.PENDING)

    def failed(self) -> "DeliveryQuerySet":
        return self.filter(status=Status.FAILED)

    def delivered(self) -> "DeliveryQuerySet":
        return self.filter(status=Status.DELIVERED)

    def due(self, now=None, *, destination=None) -> "DeliveryQuerySet":
        """Pending deliveries whose next attempt (or expired lease) has come, longest
        waiting first; to one destination (an id or a row), or to any."""
        due = self.pending().filter(available_at__lte=now or timezone.now())
        if destination is not None:
            due = due.filter(destination=destination)
        return due.order_by("available_at", "id")

    def backlog(self) -> Backlog:
        """Pending and failed counts and the oldest pending delivery's age, in two queries."""
        pending = self.pending().aggregate(count=Count("id"), oldest=Min("created_at"))
        oldest = pending["oldest"]
        age = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
        return Backlog(pending["count"], self.failed().count(), age)


class Delivery(models.Model):
    """One event for one destination: the outbox's state, per destination.

    Written by the fan-out (broadcast/queries.py) in the event's transaction;
    claimed, sent and recorded by the dispatchers. Dispatchers claim due rows by
    pushing `available_at` forward by a lease: a dispatcher that dies simply
    lets the lease expire and the row becomes due again for any other.
    Deleting a destination deletes its deliveries, pending ones included.
    """

    # The unique (event, destination) constraint's index serves lookups by event.
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    # The due index, which starts with it, serves lookups by destination.
    destination = models.ForeignKey(
        Destination, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    # Next attempt; while a dispatcher holds the delivery, the end of its lease.
    available_at = models.DateTimeField(default=timezone.now)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The event's creation time, copied: the delivery latency is measured from it.
    created_at = models.DateTimeField(default=timezone.now)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "destination"], name="broadcast_delivery_once"
            ),
        ]
        indexes = [
            # Serves the dispatchers' claim, `due()` per destination: equalities on the
            # destination and the status, a range on available_at, rows already in
            # claim order; and the pending counts per destination. Not a partial index
            # on pending rows: SQLite cannot use one when the status is a bound
            # parameter, as Django passes it.
            models.Index(
                fields=["destination", "status", "available_at", "id"],
                name="broadcast_delivery_due_idx",
            ),
            # Retention's (delivered, older than the cutoff) and the backlog's counts.
            models.Index(fields=["status", "delivered_at"], name="broadcast_delivery_status_idx"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} to destination {self.destination_id}, {self.status}"

    def body(self) -> dict:
        """What its destination is sent, in the destination's format (`formatted`)."""
        return formatted(self.destination.format, self.event.payload, self.event.envelope)


# The start of a response body an attempt keeps (bytes, as received).
RESPONSE_EXCERPT_BYTES = 1024


class AttemptQuerySet(models.QuerySet):
    def failed(self) -> "AttemptQuerySet":
        return self.filter(succeeded=False)

    def succeeded(self) -> "AttemptQuerySet":
        return self.filter(succeeded=True)


class Attempt(models.Model):
    """One attempt to deliver an event to a destination: when, how long, what came back.

    Written by the dispatchers with the round that records the attempts' outcomes
    (broadcast/store.py), never a statement per attempt. Successful attempts are
    not written when BROADCAST_LOG_SUCCESSES is off. Deleted with their delivery
    (retention: broadcast/retention.py).
    """

    # The index on (delivery, id) serves a delivery's attempts, and the cascade from it.
    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempt_log", db_index=False
    )
    # The delivery's, copied from its row by the statement that writes the attempt
    # (broadcast/queries.py): a destination's attempts are listed by it. No constraint
    # in the database: the delivery's own foreign key already holds it (an attempt's
    # delivery exists, so does that delivery's destination, and this is it), and a
    # second check per attempt would cost the drain (docs/broadcast.md, target 14).
    # Deleting a destination still deletes its attempts (Django's cascade).
    destination = models.ForeignKey(
        Destination,
        on_delete=models.CASCADE,
        related_name="attempt_log",
        db_index=False,
        db_constraint=False,
    )
    number = models.PositiveIntegerField(help_text="1 for the delivery's first attempt.")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    # None: no answer came (the connection failed, or the request timed out).
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    succeeded = models.BooleanField()
    error = models.TextField(blank=True, default="")
    # The start of the response body, at most RESPONSE_EXCERPT_BYTES, as received.
    response = models.TextField(blank=True, default="")

    objects = AttemptQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["delivery", "id"], name="broadcast_attempt_delivery_idx"),
            # A destination's failed attempts, newest first. Its successes are most of the
            # log and are not indexed by destination: each would cost every drain an index
            # entry (BENCHMARKS.md, target 14), and listing them walks the log newest
            # first, where a busy destination's own come soon; for one with few attempts
            # among many, that walk is the whole log, a price paid only by that listing.
            models.Index(
                fields=["destination", "id"],
                condition=Q(succeeded=False),
                name="broadcast_attempt_failed_idx",
            ),
        ]

    def __str__(self) -> str:
        outcome = self.status_code or "no answer"
        return f"attempt {self.number} of delivery {self.delivery_id}: {outcome}"


class RateBucket(models.Model):
    """A destination's rate limit, shared by every dispatcher: its token bucket's state
    (broadcast/ratelimit.py `take_tokens`), made the first time a round takes from it."""

    destination = models.OneToOneField(
        Destination, on_delete=models.CASCADE, primary_key=True, related_name="rate_bucket"
    )
    tokens = models.FloatField()
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"rate bucket of destination {self.destination_id}: {self.tokens:.2f} tokens"
