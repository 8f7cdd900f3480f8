"""The pacing: when the dispatcher's next round runs, how much it claims, when it listens.

All of the rounds' timing lives here, in `Pacer`: when they run, what they
claim, when to listen (beside it, the switches are read at most once a second,
broadcast/control.py `READ_INTERVAL`, and the doorbell coalesces a burst of
commits, broadcast/dispatch/wake.py; the gates say what a destination allows, and
from when, broadcast/dispatch/gates.py). The
loop (broadcast/dispatch/loop.py) hands it a `Snapshot` of what it sees (the
queue, the requests in flight, the answers waiting to be recorded, what the
gates allow) and the time; the pacer answers, and is told when a round starts
and ends. No I/O, no threads, no clock of its own: its tests are tables of
snapshots (tests/broadcast/test_pacing.py).

A *round* records the answers gathered since the last one and claims due
events into the local queue (broadcast/store.py `exchange`). One runs:

- at once when woken (a NOTIFY on PostgreSQL, the doorbell on SQLite, the
  start), when as many answers wait as a claim tops the queue
  up with (the low water mark), or after a claim that got all it asked for
  while the queue is below that mark;
- at the *poll*: `poll_interval` after the last round while nothing announces
  new events, the safety net (SAFETY_NET_POLL) while something does (LISTEN,
  the doorbell), the slow poll (SLOW_POLL) while paused; the loop may first ask
  the cheap question "is anything due?" (SQLite's probe) and skip a round that
  would find nothing;
- when a retry of ours falls due (nothing announces it);
- when the switches (the pause, the destinations) may be read again after a
  wake-up whose round did not read them (read at most once a second): the
  wake-up may have been a change of them (`read_due`);
- a poll interval after the last round if answers wait to be recorded; but
  with the queue full (a slow destination's answers trickle in) only at the
  slow poll: a round would record one or two and claim nothing;
- while the gates hold claims back (the breaker open), or the queue is full,
  not before the breaker's next probe, or the slow poll;
- and never within FAILED_ROUND_RETRY of a round that failed (the database away),
  whatever asks for one: the failed round's answers wait for the next.

Each round's answers are collected by the loop together, at the round's
end, unless sends wait on them (`collect_now`): one wake-up for many answers.
Under a steady load every commit would still wake the listening side, so after
BUSY_ROUNDS busy rounds in a row the dispatcher stops listening and polls, until
a round claims nothing; it also stops while a backlog fills the queue (until the
queue empties) and while the breaker is open (`wants_wakeups`).
"""

import math
from dataclasses import dataclass

# The safety net: while something announces new events (LISTEN, the doorbell),
# the poll only finds what nothing announces (another dispatcher's expired lease,
# a lost announcement), as Procrastinate's worker polls every few seconds beside
# LISTEN. Each costs a round (on PostgreSQL three statements): every 10 s keeps an
# idle dispatcher and its backends under a millisecond of CPU a second (target 10).
SAFETY_NET_POLL = 10.0
# The slow poll: the pace of the rounds while paused (reading the switch), and of a
# full queue's (recording a slow destination's answers).
SLOW_POLL = 1.0
# After a round that failed (the database away), the next: a second later, whatever asks
# for one sooner.
FAILED_ROUND_RETRY = 1.0
# Rounds in a row that claimed BUSY_CLAIM events or more before polling replaces
# listening (a steady load: every commit's wake-up would cost more than a poll).
BUSY_ROUNDS = 5
BUSY_CLAIM = 2


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the loop sees at `now` (its monotonic clock)."""

    now: float
    queued: int = 0  # claimed events waiting to be sent
    in_flight: int = 0  # requests sent, not answered
    answers: int = 0  # answers waiting to be recorded
    round_running: bool = False
    woken: bool = False  # something announced new events, or asked for a round
    listening: bool = False  # something announces new events (LISTEN, the doorbell)
    paused: bool = False
    free: int = 0  # requests that may start now (free connections)
    moved_at: float = 0.0  # when a request was last sent or answered
    claims_resume_at: float | None = None  # gates holding claims back: their next claim
    rate_limited: bool = False  # its claims take tokens of a rate limit
    sends_resume_at: float = 0.0  # gates holding sends back: when one may start
    once: bool = False  # `--once`: deliver what is due, then stop


@dataclass(frozen=True, slots=True)
class Pace:
    """The pacer's settings."""

    concurrency: int
    batch_size: int
    poll_interval: float
    request_timeout: float
    lease: float

    @property
    def full_round(self) -> int:
        """All that can be in flight at once."""
        return min(self.concurrency, self.batch_size)

    @property
    def low_water(self) -> int:
        """A claim tops the queue up once it falls below this, or once as many answers wait
        (a round costs much the same whatever it carries)."""
        return max(self.concurrency, self.batch_size // 2)


class Pacer:
    """The dispatcher's timing: its whole state, and every rule about rounds and waiting."""

    def __init__(self, pace: Pace) -> None:
        self.pace = pace
        self.last_round = 0.0  # when the last round started
        self.next_poll = 0.0
        self.next_retry = math.inf  # when our soonest retry is due
        self.next_read = math.inf  # when a round must read the switches a wake-up may have changed
        self.claim_again = False  # the last claim got all it asked for
        self.found_nothing = False  # the last round (or probe) found nothing due
        self.busy_rounds = 0  # rounds in a row that claimed BUSY_CLAIM events or more
        self.backlogged = False  # the queue was full and has not emptied since
        self.held_until = 0.0  # a round failed: none before this, whatever asks for one

    # -- questions (no state changes) ------------------------------------------------

    def round_wanted(self, s: Snapshot) -> bool:
        """Whether a round must run now, whatever is due (something to record or to claim)."""
        low_water = self.pace.low_water
        return s.now >= self.held_until and (
            s.woken
            or s.now >= self.next_read
            or s.answers >= low_water
            or (self.claim_again and s.queued < low_water)
            # --once: the answers are all that is left; record them now, not at the poll.
            or (s.once and bool(s.answers) and not s.queued and not s.in_flight)
        )

    def poll_due(self, s: Snapshot) -> bool:
        """Whether the poll (or a retry, or answers' deadline) is due: a round unless the
        loop can tell that it would find nothing to do."""
        return s.now >= self.next_round_at(s)

    def next_round_at(self, s: Snapshot) -> float:
        """When the next round starts unless something wakes the loop first."""
        return max(min(self._next_poll_at(s), self.next_read), self.held_until)

    def _next_poll_at(self, s: Snapshot) -> float:
        if s.answers and s.queued >= self.pace.low_water:
            # a full queue's trickle of answers
            return self.last_round + max(self.pace.poll_interval, SLOW_POLL)
        at = min(self.next_poll, self.next_retry)
        if s.answers:
            return min(at, self.last_round + self.pace.poll_interval)
        if s.paused:
            return at
        if s.claims_resume_at is not None:
            return max(at, s.claims_resume_at)
        if s.queued >= self.pace.low_water:
            return max(at, self.last_round + SLOW_POLL)
        return at

    def claim_size(self, s: Snapshot) -> int:
        """How many events a round starting now should claim: the queue's room once it is
        below the low water mark; or, in a round that records answers anyway, as soon as
        a full round fits (a backlog's queue then never runs dry while a round records).

        Rate-limited, no more than can be sent at once: its tokens are taken at the
        claim, and claims queued behind a slow destination's requests would all go out
        the moment it answers, past its rate."""
        room = self.pace.batch_size - s.queued
        wanted = 0
        if s.queued < self.pace.low_water or (s.answers and room >= self.pace.full_round):
            wanted = room
        if s.rate_limited:
            wanted = min(wanted, max(0, s.free - s.queued))
        return wanted

    def round_here(self, s: Snapshot) -> bool:
        """Whether the loop runs a round starting now itself rather than hand it to the
        database thread: when nothing is queued to send meanwhile (the answers in flight
        can wait), or what is queued cannot be sent now: held back (a pause, a
        Retry-After, the rate limit's next send), or waiting on a slow destination (no
        connection free for it, and none of its requests sent or answered for a poll
        interval; a drain's connections are all busy too, but their answers keep
        coming). That is the other
        destinations' isolation (BENCHMARKS.md target 12): a hand-off costs both threads
        a sleep and a wake-up, a large share of a small round's CPU and of its latency
        (broadcast/dbcalls.py)."""
        stuck = not s.free and s.now - s.moved_at >= self.pace.poll_interval
        return not s.queued or stuck or s.sends_resume_at > s.now

    def collect_now(self, s: Snapshot) -> bool:
        """Whether an answer should end the loop's wait, or wait to be collected later.

        At once when events queue for the handles answers free, when the answers
        would make a full round, once they are due to be recorded, or when they
        are all that is left (`--once`). Otherwise (a trickle) at the loop's next
        wake-up: one wake-up for a round's answers rather than one each.
        """
        return (
            s.queued > 0
            or s.answers + s.in_flight >= self.pace.full_round
            or s.now >= self._collect_by()
            or self._idle(s)
        )

    def timeout(self, s: Snapshot) -> float:
        """How long the loop may wait for answers or a wake-up: not at all if a round is wanted
        now (a round that ended in this turn may leave one wanted: the wake-up that asked
        for it, or the answers it did not carry, came while it ran)."""
        if not s.round_running and self.round_wanted(s):
            return 0.0
        timeout = self.pace.lease if s.round_running else self.next_round_at(s) - s.now
        if s.in_flight and not self.collect_now(s):
            timeout = min(timeout, self._collect_by() - s.now)
        if s.queued and s.free and not s.paused:
            timeout = min(timeout, s.sends_resume_at - s.now)
        return max(timeout, 0.0)

    def wants_wakeups(self, s: Snapshot) -> bool:
        """Whether to listen for new events: not under a steady load (polling pays less),
        not while a backlog fills the queue, not while claims are held back."""
        polling = self.busy_rounds >= BUSY_ROUNDS
        return not (polling or self.backlogged or s.claims_resume_at is not None)

    def finished(self, s: Snapshot) -> bool:
        """`--once`: the last round found nothing due (or nothing may be sent: paused) and
        nothing is left to send or record, and no round is asked for (a wake-up)."""
        return (
            not s.round_running
            and not s.woken
            and (self.found_nothing or s.paused)
            and not (s.queued or s.answers or s.in_flight)
        )

    # -- what happened (state changes) -----------------------------------------------

    def round_started(self, s: Snapshot) -> None:
        self.last_round = s.now
        self.next_poll = s.now + self._poll_interval(s)
        self._looked(s.now)
        if s.now >= self.next_read:
            self.next_read = math.inf

    def round_ended(
        self, *, claimed: int, asked: int, started: float, cut_short: bool = False
    ) -> None:
        """A round that started at `started` claimed `claimed` of the `asked`; `cut_short`:
        its rate limit held its claim back or cut it to its tokens, so more may be due."""
        self.found_nothing = claimed == 0 and not cut_short
        # Fewer than asked for: nothing more is due yet, so wait for a wake-up or the
        # poll rather than ask again at once (under a trickle, a wasted round each time).
        self.claim_again = claimed >= asked > 0
        was_polling = self.busy_rounds >= BUSY_ROUNDS
        if claimed >= BUSY_CLAIM:
            self.busy_rounds += 1
        elif not claimed:
            self.busy_rounds = 0
        if self.busy_rounds >= BUSY_ROUNDS and not was_polling:
            self.next_poll = min(self.next_poll, started + self.pace.poll_interval)

    def round_failed(self, now: float) -> None:
        """The database was away, or refused the round: try again in a second, not at
        once, even when woken or with answers waiting (the failed round's are kept)."""
        self.held_until = self.next_poll = now + FAILED_ROUND_RETRY
        self.claim_again = False

    def nothing_to_do(self, s: Snapshot, *, looked: bool = True) -> None:
        """A round was due but had nothing to record and nothing to claim, or the loop's
        probe found nothing due: the next poll comes as after a round that found none.
        `looked`: false when nothing is learnt of what is due (a rate limit holding the
        claims back for its next token)."""
        self.next_poll = s.now + self._poll_interval(s)
        self._looked(s.now)
        if looked:
            self.found_nothing = True
        self.claim_again = False

    def retry_due(self, at: float) -> None:
        """A retry of ours falls due at `at` (nothing will announce it)."""
        self.next_retry = min(self.next_retry, at)

    def read_due(self, at: float) -> None:
        """A wake-up's round gave the switches as last read: a round at `at`, when they are
        read again, sees what the wake-up may have announced (a destination added, paused).

        A later `at` than one still pending supersedes it: the switches were read since
        (after the wake-up that asked for it), so a round at the earlier time would find
        them not yet readable again, and clear this one unread."""
        self.next_read = at if self.next_read == math.inf else max(self.next_read, at)

    def queue_seen(self, queued: int) -> None:
        """The queue's length after the loop's sends: a full queue means a backlog until
        it empties (so that listening does not flap at every claim of a drain)."""
        if queued >= self.pace.low_water:
            self.backlogged = True
        elif not queued:
            self.backlogged = False

    # -- helpers ---------------------------------------------------------------------

    def _poll_interval(self, s: Snapshot) -> float:
        if s.paused:
            return max(self.pace.poll_interval, SLOW_POLL)
        if s.listening and s.claims_resume_at is None:
            return max(self.pace.poll_interval, SAFETY_NET_POLL)
        return self.pace.poll_interval

    def _looked(self, now: float) -> None:
        """A round (or the probe) at `now` has looked for the retries due by then."""
        if now >= self.next_retry:
            self.next_retry = math.inf

    def _collect_by(self) -> float:
        """Answers are collected a poll interval after the last round at the latest, and
        always well within the request timeout (libcurl times out an answer left unread)."""
        return self.last_round + min(self.pace.poll_interval, self.pace.request_timeout / 2)

    def _idle(self, s: Snapshot) -> bool:
        """`--once` with nothing due and nothing queued: only answers are left, collected as
        they come so that it ends then rather than at the next poll."""
        return s.once and self.found_nothing and not s.queued
