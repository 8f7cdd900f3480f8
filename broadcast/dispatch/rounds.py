"""A round: the dispatcher's database work, handed over by the loop in one job.

A round points the built-in destination at the dispatcher's URL (its first),
disables the destinations that answered 410 Gone, reads the switches (the
broadcast's pause and the enabled destinations, at most once a second),
releases the claims a pause left unsent, records the answers gathered since
the last round with their attempts (the attempt log) and claims the next
deliveries for each destination (broadcast/store.py `exchange`), and, when a
claim found nothing due, prunes old deliveries. It runs on the dispatcher's
database thread, or on the loop's own when nothing is queued to send meanwhile
(broadcast/dbcalls.py).
"""

import datetime
import logging
from dataclasses import dataclass, field

from django.db import DatabaseError

from broadcast import control, failing, sessions, store
from broadcast.destinations import (
    Target,
    delivery_targets,
    disable_and_announce,
    sync_alerts_destination,
    sync_builtin_destination,
)
from broadcast.ratelimit import give_back_tokens, take_tokens
from broadcast.retention import prune_delivered

logger = logging.getLogger("broadcast")


@dataclass(frozen=True, slots=True)
class Switches:
    """What the operators decide, as a round reads it: the broadcast's pause, and the
    enabled destinations with their settings."""

    paused: bool = False
    targets: tuple[Target, ...] = ()


def read_switches() -> Switches:
    return Switches(control.pause_state().paused, delivery_targets())


def switch_watcher(**kwargs) -> control.Watcher[Switches]:
    """The switches, read at most once a second (control.READ_INTERVAL)."""
    return control.Watcher(read_switches, Switches(), **kwargs)


@dataclass(slots=True)
class RoundJob:
    outcomes: list[store.Answered]  # recorded by the round; kept for the next if it fails
    limits: dict[int, int]  # deliveries to claim at most, per destination id
    now: datetime.datetime  # the injected clock's time, stamped in the database
    started: float  # the loop's monotonic time before the claim: the leases run from then
    disable: dict[int, str] = field(default_factory=dict)  # 410s' reasons, per destination id
    unsent: list[int] = field(default_factory=list)  # claims a pause left unsent
    retention_days: float = 0.0  # prune deliveries older than this if nothing is due (0: no)
    builtin_url: str | None = None  # the built-in destination's URL, to store (None: done)
    rates: dict[int, float] = field(default_factory=dict)  # the rate-limited destinations' rates
    attempts: list[store.Attempted] = field(default_factory=list)  # for the log, with `outcomes`
    # The failing clocks (broadcast/failing.py): failures per destination, and the
    # destinations whose clock a success stops; hours of failing before disabling (0: never).
    failures: dict[int, failing.Failures] = field(default_factory=dict)
    recovered: set[int] = field(default_factory=set)
    disable_after: float = 0.0


@dataclass(slots=True)
class RoundResult:
    claimed: list[store.Claimed]
    switches: Switches
    pruned: bool  # retention ran
    fresh: bool  # the switches were read by this round (not the last read's)
    # It disabled a destination, and so wrote an alert its claim could not see yet (due
    # after the round's clock): a round must follow.
    announced: bool = False
    # Per rate-limited destination whose bucket ran dry: seconds until its next token.
    dry: dict[int, float] = field(default_factory=dict)


def run_round(
    job: RoundJob, *, owner: str, lease: float, switches: control.Watcher[Switches]
) -> RoundResult:
    """Run `job` for the dispatcher `owner` on this thread's connection."""
    changed = job.builtin_url is not None or bool(job.disable)
    if job.builtin_url is not None:
        sync_builtin_destination(url=job.builtin_url)
        sync_alerts_destination()
    announced = False
    for destination, reason in job.disable.items():
        announced |= disable_and_announce(destination_id=destination, reason=reason)
    before = switches.read_count
    state = switches.refresh() if changed else switches.current()
    if job.unsent:
        store.release(owner=owner, now=job.now, ids=job.unsent)
    enabled = {target.id for target in state.targets if not target.paused}
    limits = {} if state.paused else {d: n for d, n in job.limits.items() if d in enabled}
    announced |= _keep_clocks(job)
    granted = _take_tokens(limits, job)
    claimed = store.exchange(owner=owner, outcomes=job.outcomes, attempts=job.attempts,
                             limits=limits, lease=lease, now=job.now)  # fmt: skip
    # Recorded: nothing after may fail the round, whose outcomes and attempts the next
    # round would record again.
    dry, prune = {}, False
    try:
        dry = _give_back_unused(granted, claimed)
        # Retention never while due deliveries wait: only after a claim that asked found none.
        prune = job.retention_days > 0 and any(limits.values()) and not claimed
        if prune:
            _prune(job.retention_days, job.now)
    except DatabaseError:
        logger.exception("Could not give back rate tokens or prune; the next round will")
    fresh = switches.read_count != before
    return RoundResult(claimed, state, prune, fresh=fresh, dry=dry, announced=announced)


def _prune(days: float, now: datetime.datetime) -> None:
    with sessions.custom_plans():  # its plan depends on its cutoff
        pruned = prune_delivered(days=days, now=now)
    if pruned:
        logger.info(
            "Pruned %d deliveries delivered more than %g days ago, %d events and %d attempts",
            pruned.deliveries, days, pruned.events, pruned.attempts,
        )  # fmt: skip


def _keep_clocks(job: RoundJob) -> bool:
    """The failing clocks, before the outcomes they count are recorded: a round that fails
    after them gives its outcomes and attempts to the next, which must record them once
    (a clock may count a failure twice, which only brings its end a little closer).
    Whether a destination was disabled."""
    failing.clear(destinations=job.recovered)
    disabled = False
    for destination, failures in job.failures.items():
        disabled |= failing.record(destination=destination, failures=failures, now=job.now,
                                   disable_after=job.disable_after)  # fmt: skip
    return disabled


def _take_tokens(limits: dict[int, int], job: RoundJob) -> dict[int, tuple[int, float]]:
    """Each rate-limited destination's limit cut to the tokens its bucket gave: per
    destination, (granted, seconds until the next token)."""
    granted = {}
    for destination, rate in job.rates.items():
        if limits.get(destination, 0) > 0:
            taken = take_tokens(destination=destination, rate=rate,
                                wanted=limits[destination], now=job.now)  # fmt: skip
            limits[destination] = taken[0]
            granted[destination] = taken
    return granted


def _give_back_unused(
    granted: dict[int, tuple[int, float]], claimed: list[store.Claimed]
) -> dict[int, float]:
    """Tokens taken for deliveries that were not due go back to their buckets; the
    destinations that used every token they got, with the wait for the next one."""
    dry = {}
    for destination, (tokens, wait) in granted.items():
        used = sum(1 for delivery in claimed if delivery.destination == destination)
        if used < tokens:
            give_back_tokens(destination=destination, tokens=tokens - used)
        elif wait > 0:
            dry[destination] = wait
    return dry
