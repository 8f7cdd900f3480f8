"""A round: the dispatcher's database work, handed over by the loop in one job.

A round stores a 410's pause if one came, reads the pause switch (at most
once a second), releases the claims a pause left unsent, records the answers
gathered since the last round and claims the next events (broadcast/store.py
`exchange`), and, when a claim found nothing due, prunes old deliveries.
It runs on the dispatcher's database thread, or on the loop's own when nothing
is queued to send meanwhile (broadcast/dbcalls.py).
"""

import datetime
import logging
from dataclasses import dataclass, field

from broadcast import control, sessions, store
from broadcast.retention import prune_delivered

logger = logging.getLogger("broadcast")


@dataclass(slots=True)
class RoundJob:
    outcomes: list[store.Answered]  # recorded by the round; kept for the next if it fails
    limit: int  # events to claim at most
    now: datetime.datetime  # the injected clock's time, stamped in the database
    started: float  # the loop's monotonic time before the claim: the leases run from then
    pause_reason: str = ""  # a 410's, to store ("": none)
    unsent: list[int] = field(default_factory=list)  # claims a pause left unsent
    retention_days: float = 0.0  # prune deliveries older than this if nothing is due (0: no)


@dataclass(slots=True)
class RoundResult:
    claimed: list[store.Claimed]
    paused: bool
    pruned: bool  # retention ran


def run_round(
    job: RoundJob, *, owner: str, lease: float, switch: control.PauseWatcher
) -> RoundResult:
    """Run `job` for the dispatcher `owner` on this thread's connection."""
    if job.pause_reason:
        control.pause(reason=job.pause_reason)
        switch.refresh()
    paused = switch.current().paused
    if job.unsent:
        store.release(owner=owner, now=job.now, ids=job.unsent)
    limit = 0 if paused else job.limit
    claimed = store.exchange(
        owner=owner, outcomes=job.outcomes, limit=limit, lease=lease, now=job.now
    )
    # Retention never while due events wait: only after a claim found none.
    prune = job.retention_days > 0 and limit > 0 and not claimed
    if prune:
        with sessions.custom_plans():  # its plan depends on its cutoff
            pruned = prune_delivered(days=job.retention_days, now=job.now)
        if pruned:
            logger.info("Pruned %d delivered events older than %g days", pruned, job.retention_days)
    return RoundResult(claimed, paused, prune)
