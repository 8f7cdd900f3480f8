"""A destination that keeps failing: the clock since its last success, the warnings on the
way, and its disabling, announced.

Svix's rule, which the issue takes: a destination whose every attempt has
failed for BROADCAST_DISABLE_AFTER_HOURS (default 120, five days), at least
MIN_ATTEMPTS times, is disabled. The clock is kept on the destination's row
(`failing_since`, `failing_attempts`), so that every dispatcher adds to the
same one: the rounds that record failures start it and add to it, and a
round that records a success clears it. Warnings are logged as the clock
passes 50%, 70% and 90% of that time (Outpost's alert thresholds), once each
(`failing_warned`, on the row).

A healthy destination costs its rounds no statement: a round clears only a
clock that the dispatcher knows runs (its last read of the destinations, or
its own failures since: `Watch`, the rule, without I/O).
"""

import datetime
import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from django.db import transaction

from broadcast.destinations import CLOCK_AT_REST, disable_and_announce
from broadcast.dispatch.policy import Decision, Verdict
from broadcast.models import Destination

logger = logging.getLogger("broadcast")

MIN_ATTEMPTS = 10
WARNINGS = (50, 70, 90)  # percentages of the time before it is disabled


@dataclass(frozen=True, slots=True)
class Failures:
    """A round's failed attempts to one destination: how many, and the last one's error."""

    attempts: int
    last_error: str


class Watch:
    """Which failing clocks a round is to touch, from the decisions it records (no I/O).

    A destination's failures go to its clock unless one of its attempts in the
    same round succeeded. A success clears the clock only of a destination whose
    clock this dispatcher knows runs: it read it running (`read_running`), or
    recorded failures to it since; so a healthy destination costs no statement.
    """

    def __init__(self) -> None:
        self.running: set[int] = set()  # destinations whose failures this dispatcher recorded

    def news(
        self, decisions: Iterable[tuple[int, Decision]], read_running: Callable[[int], bool]
    ) -> tuple[dict[int, Failures], set[int]]:
        """From each (destination, decision): the failures to add to each destination's
        clock, and the destinations whose clock a success stops."""
        failures: dict[int, Failures] = {}
        succeeded: set[int] = set()
        for destination, decision in decisions:
            if decision.verdict == Verdict.DELIVERED:
                succeeded.add(destination)
            else:
                count = failures[destination].attempts if destination in failures else 0
                failures[destination] = Failures(count + 1, decision.error)
        self.running |= failures.keys() - succeeded
        recovered = {d for d in succeeded if d in self.running or read_running(d)}
        self.running -= recovered
        return {d: f for d, f in failures.items() if d not in succeeded}, recovered


def clear(*, destinations: Collection[int]) -> None:
    """A success: the destinations' clocks stop (one statement for all)."""
    if destinations:
        Destination.objects.filter(pk__in=destinations, failing_since__isnull=False).update(
            **CLOCK_AT_REST
        )


def record(
    *, destination: int, failures: Failures, now: datetime.datetime, disable_after: float
) -> bool:
    """Add `failures` to the destination's clock (started at `now` if it was not running);
    warn at each threshold passed, and disable it once `disable_after` hours have passed
    with MIN_ATTEMPTS failed attempts (never, for 0 hours). Whether this call disabled it."""
    with transaction.atomic():
        row = Destination.objects.select_for_update(no_key=True).filter(pk=destination).first()
        if row is None:  # deleted meanwhile
            return False
        row.failing_since = row.failing_since or now
        row.failing_attempts += failures.attempts
        warned, window = row.failing_warned, datetime.timedelta(hours=disable_after)
        failing_for = now - row.failing_since
        if disable_after > 0:
            passed = [p for p in WARNINGS if failing_for >= window * p / 100]
            row.failing_warned = max([warned, *passed])
        row.save(update_fields=["failing_since", "failing_attempts", "failing_warned"])
        if row.failing_warned > warned:
            logger.warning(
                "Destination %s: every attempt has failed since %s (%d attempts); it will be "
                "disabled after %g hours of it (%d%% of that time gone). Last error: %s",
                row.name, f"{row.failing_since:%Y-%m-%d %H:%M:%S %Z}", row.failing_attempts,
                disable_after, row.failing_warned, failures.last_error,
            )  # fmt: skip
        due = disable_after > 0 and failing_for >= window
        if row.enabled and due and row.failing_attempts >= MIN_ATTEMPTS:
            reason = (
                f"every attempt failed since {row.failing_since:%Y-%m-%d %H:%M:%S %Z} "
                f"({row.failing_attempts} attempts); the last: {failures.last_error}"
            )
            return disable_and_announce(destination_id=row.pk, reason=reason)
    return False
