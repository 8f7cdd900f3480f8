"""Pausing and resuming the broadcast, for every dispatcher at once.

The state is one database row (`broadcast.models.Control`), so dispatchers on
every machine see it: each reads it at most once a second (`PauseWatcher`)
and, while paused, claims and sends nothing; events keep accumulating as
pending. The commands `broadcast_pause`/`broadcast_resume`, the admin's
buttons, and a dispatcher that gets 410 Gone all call `pause`/`resume` here.
"""

import datetime
import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from broadcast.models import Control

# How often a dispatcher reads the state at most: the "within a second".
READ_INTERVAL = 1.0


@dataclass(frozen=True)
class PauseState:
    """Whether the broadcast is paused, why, and since when (None when not paused)."""

    paused: bool
    reason: str = ""
    since: datetime.datetime | None = None


RUNNING = PauseState(paused=False)


def pause(*, reason: str, using: str = "default") -> PauseState:
    """Pause every dispatcher. Pausing again only updates the reason (`since` stays)."""
    with transaction.atomic(using=using):
        row, _ = (
            Control.objects.using(using)
            .select_for_update()
            .get_or_create(pk=Control.SINGLETON, defaults={"since": timezone.now()})
        )
        if not row.paused:
            row.paused, row.since = True, timezone.now()
        row.reason = reason
        row.save(using=using)
    return _state(row)


def resume(*, using: str = "default") -> PauseState:
    """Let the dispatchers claim and send again (nothing happens if not paused)."""
    with transaction.atomic(using=using):
        Control.objects.using(using).filter(pk=Control.SINGLETON).update(
            paused=False, reason="", since=None
        )
    return RUNNING


def pause_state(*, using: str = "default") -> PauseState:
    """The current state, read from the database (one query by primary key)."""
    row = Control.objects.using(using).filter(pk=Control.SINGLETON).first()
    return _state(row) if row is not None else RUNNING


def _state(row: Control) -> PauseState:
    if not row.paused:
        return RUNNING
    return PauseState(paused=True, reason=row.reason, since=row.since)


class PauseWatcher:
    """A dispatcher's view of the state: read from the database at most every `interval` s.

    Call `current()` as often as wanted (every round); it queries only when the
    last read is `interval` seconds old. `refresh()` forces a read (after this
    dispatcher paused itself, for instance).
    """

    def __init__(
        self, *, interval: float = READ_INTERVAL, clock=time.monotonic, using: str = "default"
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._using = using
        self._state = RUNNING
        self._read_at: float | None = None

    def current(self) -> PauseState:
        """The state as last read, re-read if that was `interval` seconds ago or more."""
        if self._read_at is None or self._clock() - self._read_at >= self.interval:
            self.refresh()
        return self._state

    def refresh(self) -> PauseState:
        """Read the state now."""
        self._state = pause_state(using=self._using)
        self._read_at = self._clock()
        return self._state
