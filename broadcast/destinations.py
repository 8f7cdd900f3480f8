"""Managing destinations: the API, the admin and the commands all go through these functions.

A destination's state is written here only; its deliveries are written by the
fan-out (broadcast/services.py). Nothing here knows of HTTP requests: callers
pass in what they validated. Every change wakes the dispatchers at its commit,
whose next round reads the destinations again (at most once a second).

The built-in destination (`managed`) is the counter server of COUNTER_SERVER_URL:
`sync_builtin_destination` keeps one row in step with that setting, after every
`migrate` (a post_migrate receiver, broadcast/apps.py) and when a dispatcher
starts. Its name and URL come from the settings and cannot be edited; its
signing secrets are BROADCAST_SIGNING_SECRETS, not rows of DestinationSecret.
COUNTER_SERVER_URL="" disables it (with that reason) rather than deleting it, so
that its pending deliveries are kept for when the setting comes back.
"""

import datetime
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from broadcast.conf import broadcast_setting, counter_server_url
from broadcast.models import (
    ALERTS_NAME,
    BUILTIN_NAME,
    Action,
    Destination,
    DestinationSecret,
    Format,
    Status,
)
from broadcast.services import announce, wake_dispatchers
from broadcast.signing import new_secret

logger = logging.getLogger("broadcast")

DEFAULT_MAX_DESTINATIONS = 50
DEFAULT_SECRET_OVERLAP_HOURS = 24.0
# The fields an operator sets (the rest is state: managed, created_at, disabled_reason).
EDITABLE = ("name", "url", "actions", "format", "enabled", "max_rate", "paused", "paused_reason")
# The built-in destination's fields that the settings own.
MANAGED_FIELDS = ("name", "url")
NO_URL_REASON = "COUNTER_SERVER_URL is empty: no built-in destination."
# A failing clock at rest (broadcast/failing.py): after a success, and when a destination
# is enabled again, so that the failures that disabled it do not disable it again.
CLOCK_AT_REST = {"failing_since": None, "failing_attempts": 0, "failing_warned": 0}
NO_ALERT_URL_REASON = "BROADCAST_ALERT_URL is empty: alerts go nowhere."
# What the alerts destination receives, and how, is not an operator's to change.
ALERTS_FIELDS = ("actions", "format")
DISABLED_BY_OPERATOR = "disabled by an operator"


def max_destinations() -> int:
    """BROADCAST_MAX_DESTINATIONS (default 50)."""
    return int(broadcast_setting("MAX_DESTINATIONS", DEFAULT_MAX_DESTINATIONS))


def secret_overlap() -> datetime.timedelta:
    """How long a rotated secret goes on signing: BROADCAST_SECRET_OVERLAP_HOURS (default 24)."""
    hours = float(broadcast_setting("SECRET_OVERLAP_HOURS", DEFAULT_SECRET_OVERLAP_HOURS))
    return datetime.timedelta(hours=hours)


@transaction.atomic
def destination_create(
    *,
    name: str,
    url: str,
    actions: Iterable[str] = (Action.CREATE, Action.DELETE),
    format: str = Format.COUNTER,
    enabled: bool = True,
    max_rate: float = 0.0,
    paused: bool = False,
    paused_reason: str = "",
) -> tuple[Destination, str]:
    """A new destination and its first signing secret, whose text is returned this once.

    At most BROADCAST_MAX_DESTINATIONS destinations (the built-in and alerts ones included):
    one more is a ValidationError. It gets the events created after it.
    """
    # Lock the existing rows, then count: concurrent creators count one after the other.
    # FOR NO KEY UPDATE: the fan-out's lock on them (broadcast/queries.py) does not wait on it.
    list(Destination.objects.select_for_update(no_key=True).values_list("pk", flat=True))
    actions = list(actions)
    destination_check(destination=None, changes={"name": name, "actions": actions})
    destination = Destination(
        name=name,
        url=url,
        format=format,
        enabled=enabled,
        max_rate=max_rate,
        paused=paused,
        paused_reason=paused_reason,
    )
    destination.actions = _actions(actions)
    _save(destination, force_insert=True)
    secret = new_secret()
    DestinationSecret.objects.create(destination=destination, secret=secret)
    wake_dispatchers()
    return destination, secret


@transaction.atomic
def destination_update(*, destination: Destination, **changes) -> Destination:
    """Change some of `destination`'s fields (EDITABLE), validated as a whole.

    Enabling a disabled destination clears its disabled reason and restarts its
    failing clock (broadcast/failing.py): the failures that disabled it do not
    count against the chance it is given again. Resuming one clears its pause
    reason. The built-in destination's name and URL belong to the settings:
    changing them is a ValidationError naming the field.
    """
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    destination_check(destination=destination, changes=changes)
    was_enabled = destination.enabled
    for field, value in changes.items():
        if field == "actions":
            destination.actions = _actions(value)
        else:
            setattr(destination, field, value)
    if destination.enabled and not was_enabled:
        destination.disabled_reason = ""
        for field, value in CLOCK_AT_REST.items():
            setattr(destination, field, value)
    if not destination.enabled and was_enabled and not destination.disabled_reason:
        destination.disabled_reason = DISABLED_BY_OPERATOR
    if not destination.paused:
        destination.paused_reason = ""
    _save(destination)
    wake_dispatchers()
    return destination


def destination_disable(*, destination: Destination, reason: str) -> Destination:
    """Disable it with `reason`: it gets no new deliveries; its pending ones stay."""
    destination.enabled, destination.disabled_reason = False, reason or DISABLED_BY_OPERATOR
    destination.save(update_fields=["enabled", "disabled_reason"])
    wake_dispatchers()
    return destination


def destination_pause(*, destination: Destination, reason: str) -> Destination:
    """Pause it: its deliveries go on being written, and wait."""
    destination.paused, destination.paused_reason = True, reason
    destination.save(update_fields=["paused", "paused_reason"])
    wake_dispatchers()
    return destination


def destination_resume(*, destination: Destination) -> Destination:
    destination.paused, destination.paused_reason = False, ""
    destination.save(update_fields=["paused", "paused_reason"])
    wake_dispatchers()
    return destination


@transaction.atomic
def destination_delete(*, destination: Destination) -> int:
    """Delete it and its deliveries, pending ones included; return how many were pending.

    A destination the settings keep cannot be deleted (its setting set to "" disables it).
    """
    if destination.managed:
        raise ValidationError({"managed": managed_note(destination)})
    # Locked first: the transactions writing deliveries to it (which lock it FOR KEY SHARE,
    # broadcast/queries.py) commit before, and those that come after see it gone.
    list(Destination.objects.select_for_update().filter(pk=destination.pk).values_list("pk"))
    # Then its deliveries, before the cascade below reads their attempts: a round recording
    # one of them (and logging its attempt) commits first, and its attempt is deleted too,
    # rather than this failing at commit on it. A round whose statement starts while this
    # holds them fails at commit instead, and the next leaves the attempt out
    # (docs/broadcast.md). Retention skips the deliveries this holds.
    locked = destination.deliveries.order_by("pk").select_for_update()
    pending = sum(status == Status.PENDING for status in locked.values_list("status", flat=True))
    destination.delete()
    wake_dispatchers()
    return pending


@transaction.atomic
def destination_rotate_secret(
    *, destination: Destination, now: datetime.datetime | None = None
) -> str:
    """A new signing secret for `destination`, returned this once.

    The secrets that signed until now keep signing beside it until
    BROADCAST_SECRET_OVERLAP_HOURS from now (those already ending sooner keep
    their end), then stop.
    """
    if destination.managed:
        raise ValidationError(
            {
                "managed": f"The {destination.name} destination is signed with "
                "BROADCAST_SIGNING_SECRETS: rotate them there (python manage.py broadcast_secret)."
            }
        )
    now = now or timezone.now()
    destination.secrets.filter(expires_at__isnull=True).update(expires_at=now + secret_overlap())
    secret = new_secret()
    DestinationSecret.objects.create(destination=destination, secret=secret, created_at=now)
    wake_dispatchers()
    return secret


def destination_signing_secrets(
    *, destination: Destination, now: datetime.datetime | None = None
) -> list[str]:
    """The secrets that sign its deliveries now, newest first: the current one and the
    previous ones whose overlap has not ended. The built-in destination's are
    BROADCAST_SIGNING_SECRETS."""
    if destination.managed:
        return list(broadcast_setting("SIGNING_SECRETS", []))
    now = now or timezone.now()
    return list(
        destination.secrets.filter(expires_at__isnull=True).values_list("secret", flat=True)
    ) + list(
        destination.secrets.filter(expires_at__gt=now)
        .order_by("-expires_at", "-id")  # the latest to have been current first
        .values_list("secret", flat=True)
    )


@dataclass(frozen=True, slots=True)
class Target:
    """An enabled destination as a dispatcher delivers to it (read at most once a second).

    `secrets` are its signing secrets now, newest first; those of the destinations the
    settings keep (`managed`: the built-in and the alerts ones) are the dispatcher's
    own, BROADCAST_SIGNING_SECRETS; the built-in one's rate, when its row sets none,
    is BROADCAST_MAX_RATE.
    """

    id: int
    name: str
    url: str
    format: str
    max_rate: float = 0.0
    paused: bool = False
    managed: bool = False
    secrets: tuple[str, ...] = ()
    failing: bool = False  # its attempts have failed since its last success (broadcast/failing.py)


def delivery_targets(*, now: datetime.datetime | None = None) -> tuple[Target, ...]:
    """The enabled destinations, as the dispatchers deliver to them: two queries."""
    now = now or timezone.now()
    rows = list(Destination.objects.filter(enabled=True).order_by("id"))
    signing: dict[int, list[str]] = {row.pk: [] for row in rows}
    own = [row.pk for row in rows if not row.managed]
    current = DestinationSecret.objects.filter(destination__in=own)
    for destination, secret in (
        current.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        # The current one first, then the previous ones, the latest to have been current first.
        .order_by(F("expires_at").desc(nulls_first=True), "-id")
        .values_list("destination_id", "secret")
    ):
        signing[destination].append(secret)
    return tuple(
        Target(
            id=row.pk,
            name=row.name,
            url=row.url,
            format=row.format,
            max_rate=row.max_rate,
            paused=row.paused,
            managed=row.managed,
            secrets=tuple(signing[row.pk]),
            failing=row.failing_since is not None,
        )
        for row in rows
    )


def disable_and_announce(*, destination_id: int, reason: str) -> bool:
    """A dispatcher disables a destination (a 410, or failing for days), if still enabled:
    logged at ERROR and announced to the alerts destination (broadcast/services.py
    `announce`), once
    whichever dispatchers see it. Whether this call disabled it."""
    with transaction.atomic():
        disabled = Destination.objects.filter(pk=destination_id, enabled=True).update(
            enabled=False, disabled_reason=reason
        )
        if disabled:
            name = Destination.objects.values_list("name", flat=True).get(pk=destination_id)
            transaction.on_commit(lambda: logger.error("Destination %s disabled: %s", name, reason))
            announce({"type": "destination.disabled", "destination": name, "reason": reason})
    return bool(disabled)


def sync_builtin_destination(
    *, url: str | None = None, using: str = "default"
) -> Destination | None:
    """Keep the built-in destination in step with COUNTER_SERVER_URL (or `url`, a
    dispatcher's `--url`); return it (None: none).

    A URL and no row: the row is made (both actions, the `counter` format). A
    URL and a row: its URL follows the setting, and a row disabled for lack of a
    URL is enabled again. No URL: the row, if any, is disabled with NO_URL_REASON.
    What an operator set on it otherwise (pause, rate, actions) is kept.
    """
    return _sync_managed(BUILTIN, BUILTIN.url() if url is None else url, using)


def sync_alerts_destination(*, using: str = "default") -> Destination | None:
    """Keep the alerts destination in step with BROADCAST_ALERT_URL, as the built-in one
    with COUNTER_SERVER_URL: subscribed to the broadcast's alerts only (broadcast/services.py
    `announce`), in the `event` format, signed with BROADCAST_SIGNING_SECRETS."""
    return _sync_managed(ALERTS, ALERTS.url(), using)


def alert_url() -> str:
    """BROADCAST_ALERT_URL: where the broadcast's alerts go; empty, nowhere."""
    return str(broadcast_setting("ALERT_URL", ""))


@dataclass(frozen=True, slots=True)
class Managed:
    """A destination the settings keep: its row's fixed fields, its setting and its reader."""

    name: str
    setting: str
    url: Callable[[], str]
    fields: dict
    no_url_reason: str


BUILTIN = Managed(BUILTIN_NAME, "COUNTER_SERVER_URL", counter_server_url, {}, NO_URL_REASON)
ALERTS = Managed(
    ALERTS_NAME, "BROADCAST_ALERT_URL", alert_url,
    {"on_alert": True, "on_create": False, "on_delete": False, "format": Format.EVENT},
    NO_ALERT_URL_REASON,
)  # fmt: skip


def _managed(destination: Destination) -> Managed:
    return ALERTS if destination.on_alert else BUILTIN


def managed_note(destination: Destination) -> str:
    """Why a destination the settings keep stays: which setting it follows."""
    setting = _managed(destination).setting
    return (f"The {destination.name} destination follows {setting}: set it to an empty "
            "string to stop delivering to it; it cannot be deleted.")  # fmt: skip


def _sync_managed(managed: Managed, url: str, using: str) -> Destination | None:
    alerts = managed is ALERTS
    with transaction.atomic(using=using):
        rows = Destination.objects.using(using).select_for_update(no_key=True)
        row = rows.filter(managed=True, on_alert=alerts).first()
        if not url:
            if row is not None and row.enabled:
                row.enabled, row.disabled_reason = False, managed.no_url_reason
                row.save(using=using, update_fields=["enabled", "disabled_reason"])
            return row
        if row is None:
            row = Destination(name=managed.name, url=url, managed=True, **managed.fields)
            row.save(using=using, force_insert=True)
            return row
        changed: dict[str, object] = {"url": url, "name": managed.name}
        if not row.enabled and row.disabled_reason == managed.no_url_reason:
            changed |= {"enabled": True, "disabled_reason": "", **CLOCK_AT_REST}
        changed = {k: v for k, v in changed.items() if getattr(row, k) != v}
        if changed:
            for field, value in changed.items():
                setattr(row, field, value)
            row.save(using=using, update_fields=list(changed))
        return row


def destination_check(*, destination: Destination | None, changes: dict) -> None:
    """The rules beyond each field's own, for a new destination (`destination` None) or
    `changes` to one: at most BROADCAST_MAX_DESTINATIONS, the built-in destination's name
    reserved, its name and URL the settings'. A ValidationError naming the field.

    The services check them; the admin's form asks too, to show them as form errors.
    """
    if destination is None:
        limit = max_destinations()
        if Destination.objects.count() >= limit:
            raise ValidationError(
                f"There are already {limit} destinations, the most BROADCAST_MAX_DESTINATIONS "
                "allows: delete one first.",
                code="max_destinations",
            )
    elif destination.managed:
        _refuse_managed_changes(destination, changes)
    name = changes.get("name")
    if name in (BUILTIN_NAME, ALERTS_NAME) and not (destination and destination.managed):
        raise ValidationError(
            {"name": f"{name!r} is the name of a destination the settings keep: choose another."}
        )
    if "actions" in changes:
        _actions(changes["actions"])


def _actions(actions: Iterable[str]) -> list[str]:
    chosen = list(actions)
    if not chosen:
        raise ValidationError({"actions": "Choose at least one of create and delete."})
    try:
        return [Action(action) for action in chosen]
    except ValueError:
        raise ValidationError({"actions": "Each action is create or delete."}) from None


def _refuse_managed_changes(destination: Destination, changes: dict) -> None:
    managed = _managed(destination)
    fixed = (*MANAGED_FIELDS, *ALERTS_FIELDS) if managed is ALERTS else MANAGED_FIELDS
    for field in fixed:
        if field in changes and changes[field] != getattr(destination, field):
            raise ValidationError(
                {
                    field: f"The {destination.name} destination's {field} follows the settings "
                    f"({managed.setting}): it cannot be changed here."
                }
            )
    if changes.get("enabled") and not managed.url():
        raise ValidationError({"enabled": managed.no_url_reason})


def _save(destination: Destination, **kwargs) -> None:
    """Validate (fields, uniqueness, constraints) and save; a name taken meanwhile is a
    ValidationError too, not an IntegrityError."""
    # The built-in destination's name and URL are the settings', taken as they are.
    destination.full_clean(exclude=list(MANAGED_FIELDS) if destination.managed else None)
    try:
        with transaction.atomic():
            destination.save(**kwargs)
    except IntegrityError:
        if Destination.objects.filter(name=destination.name).exclude(pk=destination.pk).exists():
            raise ValidationError({"name": "Destination with this Name already exists."}) from None
        raise
