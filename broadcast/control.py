"""Pausing and resuming the broadcast, for every dispatcher at once.

The state is one database row (`broadcast.models.Control`), so dispatchers on
every machine see it: each reads it in its rounds, at most once a second
(`Watcher`, through broadcast/dispatch/rounds.py `switch_watcher`), and, while
paused, claims and sends nothing; deliveries keep accumulating as pending. The
commands `broadcast_pause`/`broadcast_resume` and the admin's buttons call
`pause`/`resume` here, which wake the dispatchers at commit. (One destination
is paused through broadcast/destinations.py.)
"""

import datetime
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from django.db import transaction
from django.utils import timezone

from broadcast.models import Control
from broadcast.services import wake_dispatchers

# How often a dispatcher reads the state at most: the "within a second".
READ_INTERVAL = 1.0

T = TypeVar("T")


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
        wake_dispatchers(using)
    return _state(row)


def resume(*, using: str = "default") -> PauseState:
    """Let the dispatchers claim and send again (nothing happens if not paused)."""
    with transaction.atomic(using=using):
        Control.objects.using(using).filter(pk=Control.SINGLETON).update(
            paused=False, reason="", since=None
        )
        wake_dispatchers(using)
    return RUNNING


def pause_state(*, using: str = "default") -> PauseState:
    """The current state, read from the database (one query by primary key)."""
    row = Control.objects.using(using).filter(pk=Control.SINGLETON).first()
    return _state(row) if row is not None else RUNNING


def _state(row: Control) -> PauseState:
    if not row.paused:
        return RUNNING
    return PauseState(paused=True, reason=row.reason, since=row.since)


class Watcher(Generic[T]):
    """A dispatcher's view of something in the database: read at most every `interval` s.

    Call `current()` as often as wanted (every round); it reads only when the
    last read is `interval` seconds old. `refresh()` forces a read (after this
    dispatcher changed it, for instance).
    """

    def __init__(
        self, read: Callable[[], T], initial: T, *, interval: float = READ_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.interval = interval
        self._read = read
        self._clock = clock
        self._state = initial
        self._read_at: float | None = None
        self.read_count = 0  # reads so far: whether a call read, or gave the last read's

    @property
    def next_read_at(self) -> float:
        """When `current()` reads again (on the watcher's clock)."""
        return -math.inf if self._read_at is None else self._read_at + self.interval

    def current(self) -> T:
        """The state as last read, re-read if that was `interval` seconds ago or more."""
        if self._read_at is None or self._clock() - self._read_at >= self.interval:
            self.refresh()
        return self._state

    def refresh(self) -> T:
        """Read the state now."""
        self._state = self._read()
        self._read_at = self._clock()
        self.read_count += 1
        return self._state
