"""The dispatcher: claims due events, POSTs them concurrently, records outcomes.

Two threads. The loop thread (the caller's) drives libcurl's multi interface
(broadcast/client.py): up to `concurrency` requests in flight on keep-alive
connections, started from a local queue of claimed events. One *round* runs
at a time (store.exchange: record the outcomes gathered since the last round,
claim more): on the database thread while events are queued, so that the loop
goes on sending meanwhile, else on the loop thread (broadcast/dbcalls.py).
Nothing is done per event that a round can do: no task,
future or log line per event, and the claim returns each event's key and body
ready to send. Delivery is at-least-once: an event is marked delivered only
after the counter server answered 2xx, and its Idempotency-Key lets the
receiver count a repeat once.
"""

import logging
import os
import socket
import time
import uuid
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat

from broadcast import control, metrics, sessions, store
from broadcast.breaker import Breaker
from broadcast.client import DELIVERED, GONE, HOLD_STATUSES, CounterClient, Outcome, Result
from broadcast.conf import Config
from broadcast.dbcalls import DatabaseCalls
from broadcast.probe import DueProbe, probe_for
from broadcast.ratelimit import TokenBucket
from broadcast.retention import prune_delivered
from broadcast.retry import retry_delay
from broadcast.wakeup import Waker, listener_for

logger = logging.getLogger("broadcast")

# Retention runs at start, then at most this often (seconds).
RETENTION_INTERVAL = 60.0
# While LISTEN is up (PostgreSQL) every commit announces itself, so the poll only
# finds what no NOTIFY announces: another dispatcher's expired lease or released
# claim, an event made due again by hand. Our own retries are polled for when due.
LISTENING_POLL_INTERVAL = 1.0
# Under a steady load a round comes every poll interval anyway (the listener
# coalesces NOTIFYs to that pace), and each commit's NOTIFY still wakes the
# LISTEN connection's backend: after BUSY_ROUNDS rounds in a row that each
# claimed BUSY_CLAIM events or more, the dispatcher stops listening and polls
# every poll interval, until a round claims nothing (bench/ANALYSIS.md).
BUSY_ROUNDS = 5
BUSY_CLAIM = 2


@dataclass
class Stats:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    since: float = field(default_factory=time.monotonic)

    def __bool__(self) -> bool:
        return bool(self.delivered or self.retried or self.failed)

    def add(self, other: "Stats") -> None:
        self.delivered += other.delivered
        self.retried += other.retried
        self.failed += other.failed


# What a round's job returns: the events claimed, and whether the broadcast is paused.
RoundResult = tuple[list[store.Claimed], bool]


@dataclass(slots=True)
class Round:
    """A round running on the database thread, and what the loop needs of it when it ends."""

    future: Future[RoundResult]
    outcomes: list[store.Answered]  # recorded by the round; kept for the next if it fails
    pause_reason: str  # a 410's, stored by the round ("": none)
    started: float  # time.monotonic() before the claim: the leases run from then

    @property
    def stores_pause(self) -> bool:
        return bool(self.pause_reason)


class Dispatcher:
    """Delivers outbox events to the counter server until stopped.

    A round (on the database thread) records the outcomes gathered so far and
    claims due events into the local queue; the loop sends from the queue as
    handles free up. A round starts when as many answers wait to be recorded
    as a claim tops the queue up with (half a batch, or the concurrency), when
    a NOTIFY or the poll interval comes (a slow poll while LISTEN is up; on
    SQLite only if the probe, broadcast/probe.py, finds something due), when a
    retry of ours falls due, a poll interval after the last round if answers
    wait to be recorded (the slow poll's, while the queue is full), or at once after a
    claim that got all it asked for. Claims are leases (60 s by default), far longer
    than a batch stays in the queue.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = Stats()
        self._db = DatabaseCalls()
        self._waker = Waker()
        # (lease deadline on the monotonic clock, event), oldest claim first
        self._queue: deque[tuple[float, store.Claimed]] = deque()
        self._done: list[store.Answered] = []
        self._round: Round | None = None
        self._round_limit = 0
        self._woken = True  # a round at once when the loop starts
        self._once = False  # run(once=True): until nothing is due
        self._stopping = False
        self._next_round = 0.0  # time.monotonic() of the next poll
        self._last_round = 0.0  # time.monotonic() of the last round's start
        self._next_retry = float("inf")  # time.monotonic() when our soonest retry is due
        self._claim_again = False  # the last claim got all it asked for
        self._last_claimed = -1  # events the last round claimed (-1: no round ended yet)
        self._breaker = Breaker(threshold=config.concurrency, probe_interval=config.retry_base)
        self._full_round = min(config.concurrency, config.batch_size)  # all that can be in flight
        # A round starts to claim when the queue falls below the low water mark, or
        # once as many answers wait to be recorded (a round's transaction,
        # statements and, on SQLite, WAL pages cost much the same whatever it
        # carries: bench/ANALYSIS.md); every round tops the queue up (_claim_wanted).
        self._low_water = max(config.concurrency, config.batch_size // 2)
        self.listener = None
        self._busy_rounds = 0  # rounds in a row that claimed BUSY_CLAIM events or more
        self._polling = False  # not listening for a while: a steady load (_pace)
        self._backlogged = False  # the queue was full and has not emptied since
        self._probe: DueProbe | None = None  # SQLite's cheap "anything due?" (run() opens it)
        # Operations: pause (read from the database at most once a second by the
        # database thread), a hold after an overloaded answer's Retry-After, the
        # rate limit, retention.
        self._pause_watcher = control.PauseWatcher()
        self.paused = False  # as the last round saw it, or since a 410
        self._pause_reason = ""  # a 410's, to store at the next round
        self._gone_unstored = False  # a 410 came and no round has stored the pause yet
        self._unsent: list[int] = []  # claims dropped while paused, released at the next round
        self._hold_until = 0.0  # time.monotonic() before which nothing is sent
        self._bucket = TokenBucket(config.max_rate)
        self._next_retention = 0.0  # time.monotonic(): at start, then at most once a minute
        # Answers counted since the last round; folded into the metrics and `stats` per round.
        self._round_stats = Stats()
        self._latencies: list[float] = []  # creation to 2xx (seconds) of those delivered

    def stop(self) -> None:
        """Ask for a clean stop (from any thread or a signal handler): claim nothing more,
        finish what is in flight."""
        self._stopping = True
        self._waker.wake()

    def wake(self) -> None:
        """Start a round now (from any thread): new events committed."""
        self._woken = True
        self._waker.wake()

    def run(self, *, once: bool = False) -> None:
        """Deliver until stop() (or, with `once`, until nothing is due)."""
        self._once = once
        logger.info("Dispatcher %s delivering to %s", self.owner, self.config.url)
        client = CounterClient(
            self.config.url,
            timeout=self.config.request_timeout,
            max_connections=self.config.concurrency,
        )
        self._probe = probe_for()
        try:
            with client, listener_for()(self.wake) as self.listener:
                self._deliver(client, once=once)
                self._wind_down(client)
        finally:
            if self._probe is not None:
                self._probe.close()
            # Whatever was claimed but not sent is due again at once.
            try:
                self._db.submit(store.release, owner=self.owner, now=self.config.clock()).result()
                self._db.close()
            finally:
                self._waker.close()
                self._log_summary()

    def _deliver(self, client: CounterClient, *, once: bool) -> None:
        next_summary = time.monotonic() + self.config.summary_interval
        while not self._stopping:
            now = time.monotonic()
            if self._round is None and self._round_wanted(client, now):
                self._start_round(client, now)
            if self._round is not None and self._round.future.done():
                self._end_round(self._round)  # one the loop ran itself, or ended meanwhile
            self._send(client, now)
            self._listen_if_useful()  # the breaker or the queue may have changed
            if once and self._finished(client):
                return
            now = time.monotonic()  # a round the loop ran itself took a while
            answers = self._answers_awaited(client, now)
            finished, woken = client.wait(
                self._wait_timeout(client, now, answers), self._waker.fileno(), answers=answers
            )
            if woken:
                self._waker.clear()
            if finished:
                self._note(finished)
            if now >= next_summary:
                self._log_summary()
                next_summary = now + self.config.summary_interval

    def _answers_awaited(self, client: CounterClient, now: float) -> bool:
        """Whether an answer should end the loop's wait, or wait to be collected later.

        At once when events queue for the handles that answers free, when the
        answers would make a full round, once they are due to be recorded, or
        when they are all that is left (`_idle`). Otherwise (a trickle) they are
        collected at the loop's next wake-up (its round's end, a NOTIFY, the
        poll), at the latest a poll interval after the last round, when they
        would be recorded anyway: one wake-up for a round's answers rather than
        one each.
        """
        return (
            bool(self._queue)
            or len(self._done) + client.in_flight >= self._full_round
            or now >= self._collect_by()
            or self._idle()
        )

    def _collect_by(self) -> float:
        """When the answers in flight are collected at the latest, unless one ends the wait:
        a poll interval after the last round, and always well within the request timeout
        (libcurl times out an answer left unread in its socket)."""
        config = self.config
        return self._last_round + min(config.poll_interval, config.request_timeout / 2)

    def _wait_timeout(self, client: CounterClient, now: float, answers: bool) -> float:
        """Until the next poll (or the round's end), or until a held-back request may start."""
        timeout = self._next_round_at() - now if self._round is None else self.config.lease
        if not answers and client.in_flight:
            timeout = min(timeout, self._collect_by() - now)
        if self._queue and client.free and not self.paused:
            if now < self._hold_until:
                timeout = min(timeout, self._hold_until - now)
            elif self._bucket.limited:
                timeout = min(timeout, self._bucket.wait())
        return timeout

    def _finished(self, client: CounterClient) -> bool:
        """--once: the last round claimed nothing and nothing is left to send or record."""
        return (
            self._round is None
            and self._last_claimed == 0
            and not self._queue
            and not self._done
            and client.in_flight == 0
        )

    def _round_wanted(self, client: CounterClient, now: float) -> bool:
        if (
            self._woken
            or len(self._done) >= self._low_water
            or (self._claim_again and len(self._queue) < self._low_water)
            or (self._done and self._idle() and not client.in_flight)
        ):
            return True
        return now >= self._next_round_at() and not self._nothing_due(now)

    def _idle(self) -> bool:
        """--once, the last claim found nothing and nothing is queued: only answers are left.

        They are then collected as they come and recorded once all are in, so that
        it ends then rather than at the next poll. (Running on, a claim that finds
        nothing is often a NOTIFY for events claimed already: its answers keep
        their wait.)
        """
        return self._once and self._last_claimed == 0 and not self._queue

    def _nothing_due(self, now: float) -> bool:
        """SQLite's poll, asked of the probe: True if a round would only find nothing to do."""
        if self._probe is None or self._done or self._unsent or self.paused:
            return False
        if self._pause_reason or self._retention_due(now):
            return False
        if self._probe.due(self.config.clock()):
            return False
        self._next_round = now + self._probe_interval()
        self._looked_for_retries(now)
        self._last_claimed = 0
        self._claim_again = False
        return True

    def _probe_interval(self) -> float:
        """An idle dispatcher on SQLite looks twice per poll interval (a probe is cheap)."""
        return self.config.poll_interval / 2

    def _next_round_at(self) -> float:
        """When the next round starts unless something wakes the loop first."""
        if self._done and self._queue_full():
            # Answers trickling in beside a full queue (a slow counter server's): a round
            # would record one or two and claim little or nothing, so they wait for the
            # slow poll, unless a claim's worth of them waits first (_round_wanted) or
            # the queue falls below the low water mark: a round a second rather than
            # twenty (bench/ANALYSIS.md).
            return self._last_round + max(self.config.poll_interval, LISTENING_POLL_INTERVAL)
        at = min(self._next_round, self._next_retry)
        if self._done:  # answers to record: no later than a poll interval after the last round
            return min(at, self._last_round + self.config.poll_interval)
        if not self.paused and self._claims_held():
            # Nothing to record and nothing to claim: no poll, no probe until then.
            return max(at, self._claims_resume_at())
        return at

    def _queue_full(self) -> bool:
        """As many events queued as a claim waits for (the low water mark)."""
        return len(self._queue) >= self._low_water

    def _claims_held(self) -> bool:
        """Whether a round with no answers to record would claim nothing now: the breaker
        is open (a down counter server) or the queue is full (a slow one)."""
        return self._breaker.open or self._queue_full()

    def _claims_resume_at(self) -> float:
        """While claims are held: the breaker's next probe, or (the queue full, emptied
        only as answers come) the slow poll after the last round."""
        if self._breaker.open:
            return self._breaker.next_probe
        return self._last_round + LISTENING_POLL_INTERVAL

    def _poll_interval(self) -> float:
        """Seconds from this round to the next poll."""
        if self.paused:  # a round a second only reads the state (the watcher's pace)
            return max(self.config.poll_interval, control.READ_INTERVAL)
        listening = self.listener is not None and self.listener.listening.is_set()
        if listening and not self._polling and not self._breaker.open:
            return max(self.config.poll_interval, LISTENING_POLL_INTERVAL)
        return self.config.poll_interval

    def _start_round(self, client: CounterClient, now: float) -> None:
        """Hand the database thread the outcomes so far and a claim for what the queue lacks."""
        self._woken = False
        self._last_round = now
        self._next_round = now + self._poll_interval()
        self._looked_for_retries(now)
        wanted = self._claim_wanted()
        limit = 0 if self.paused else self._breaker.allowance(wanted)
        if not (self._done or limit > 0 or self.paused):
            self._claim_again = False
            self._last_claimed = 0
            return
        self._report(client_in_flight=client.in_flight)
        done, self._done = self._done, []
        unsent, self._unsent = self._unsent, []
        retention = self._retention_due(now)
        self._round_limit = limit
        db_now = self.config.clock()
        # Read after the clock that stamps the retries, so never before they are due.
        self._note_retries(done, time.monotonic())
        job = {
            "outcomes": done,
            "limit": limit,
            "now": db_now,
            "pause_reason": self._pause_reason,
            "unsent": unsent,
            "retention": retention,
        }
        if self._queue:  # the loop has events to send meanwhile
            future = self._db.submit(self._round_job, **job)
            future.add_done_callback(lambda _: self._waker.wake())
        else:  # nothing to send until it ends: no hand-off (broadcast/dbcalls.py)
            future = self._db.here(self._round_job, **job)
        # The leases run from before the claim, as in the database.
        self._round = Round(future, done, self._pause_reason, started=now)
        self._pause_reason = ""

    def _round_job(
        self,
        *,
        outcomes: list[store.Answered],
        limit: int,
        now: datetime,
        pause_reason: str,
        unsent: list[int],
        retention: bool,
    ) -> RoundResult:
        """A round on the database thread: pause, release, record and claim, maybe prune.

        Returns the claimed events and whether the broadcast is paused.
        """
        if pause_reason:
            control.pause(reason=pause_reason)
            self._pause_watcher.refresh()
        paused = self._pause_watcher.current().paused
        if unsent:
            store.release(owner=self.owner, now=now, ids=unsent)
        claimed = store.exchange(
            owner=self.owner,
            outcomes=outcomes,
            limit=0 if paused else limit,
            lease=self.config.lease,
            now=now,
        )
        # Retention never while due events wait: only after a claim found none.
        if retention and not paused and limit > 0 and not claimed:
            with sessions.custom_plans():  # its plan depends on its cutoff
                pruned = prune_delivered(days=self.config.retention_days, now=now)
            if pruned:
                logger.info("Pruned %d delivered events older than %g days", pruned,
                            self.config.retention_days)  # fmt: skip
            self._next_retention = time.monotonic() + RETENTION_INTERVAL
        return claimed, paused

    def _looked_for_retries(self, now: float) -> None:
        """A round's claim (or the probe) at `now` has looked for the retries due by then."""
        if now >= self._next_retry:
            self._next_retry = float("inf")

    def _note_retries(self, outcomes: list[store.Answered], now: float) -> None:
        """Poll again when the soonest retry this round schedules is due (it has no NOTIFY)."""
        delays = [delay for _, _, delay in outcomes if delay is not None]
        if delays:
            self._next_retry = min(self._next_retry, now + min(delays))

    def _retention_due(self, now: float) -> bool:
        return self.config.retention_days > 0 and now >= self._next_retention

    def _claim_wanted(self) -> int:
        """How many events this round should claim: the queue's room, once it is below the
        low water mark; or, in a round that records answers anyway, as soon as a full
        round fits (a backlog's queue then never runs dry while a round records)."""
        queued = len(self._queue)
        room = self.config.batch_size - queued
        if queued < self._low_water or (self._done and room >= self._full_round):
            return room
        return 0

    def _report(self, *, client_in_flight: int) -> None:
        """This round's figures to the metrics (per round, never per event)."""
        self._fold_round_stats()
        metrics.set_breaker_open(self._breaker.open)
        metrics.set_in_flight(client_in_flight)

    def _fold_round_stats(self) -> None:
        """Hand the answers counted since the last fold to the metrics and the summary."""
        counted = self._round_stats
        if counted:
            metrics.record_round(
                delivered=counted.delivered,
                retried=counted.retried,
                failed=counted.failed,
                latencies=self._latencies,
            )
            self.stats.add(counted)
            self._round_stats = Stats()
            self._latencies = []

    def _end_round(self, round_: Round) -> None:
        """Take in the ended `round_`: queue its claims, or keep its outcomes for the next."""
        self._round = None
        try:
            claimed, paused = round_.future.result()
        except Exception:
            # The database is away (restart, network): nothing is lost. The
            # outcomes are kept for the next round; if we die first, the leases
            # expire and the events are sent again (the receiver dedupes by key).
            logger.exception(
                "Could not record %d outcomes and claim events; retrying", len(round_.outcomes)
            )
            self._done[:0] = round_.outcomes
            self._pause_reason = self._pause_reason or round_.pause_reason  # store it next time
            self._db.check_soon()  # check the connections before the next try
            self._next_round = time.monotonic() + 1.0
            self._claim_again = False
            return
        if self._gone_unstored and not round_.stores_pause:
            paused = True  # this round read the state before our 410's pause was stored
        elif round_.stores_pause:
            self._gone_unstored = False
        if paused != self.paused:
            logger.warning("Broadcast paused: claiming and sending nothing until resumed"
                           if paused else "Broadcast resumed")  # fmt: skip
        self.paused = paused
        deadline = round_.started + self.config.lease
        self._queue.extend(zip(repeat(deadline), claimed, strict=False))
        self._last_claimed = len(claimed)
        self._pace(len(claimed), round_.started)
        if not claimed and self._probe is not None:  # nothing was due: back to probing
            self._next_round = min(self._next_round, round_.started + self._probe_interval())
        # Fewer than asked for: nothing more is due yet, so wait for a NOTIFY
        # or the poll rather than ask again at once (under a steady trickle
        # that second question is a wasted database round each time).
        self._claim_again = len(claimed) >= self._round_limit > 0

    def _pace(self, claimed: int, started: float) -> None:
        """Listen for NOTIFYs while events come now and then; poll while each round
        finds some (BUSY_ROUNDS), from the next round on."""
        if claimed >= BUSY_CLAIM:
            self._busy_rounds += 1
        elif not claimed:
            self._busy_rounds = 0
        polling = self._busy_rounds >= BUSY_ROUNDS
        if polling == self._polling or self.listener is None:
            return
        self._polling = polling
        self._listen_if_useful()
        if polling:  # the next round at the poll's pace, not LISTEN's
            self._next_round = min(self._next_round, started + self.config.poll_interval)

    def _listen_if_useful(self) -> None:
        """LISTEN unless polling (a steady load), the breaker is open or a backlog
        fills the queue: NOTIFYs would then start rounds that claim nothing, and
        each wakes the LISTEN backend. Back to listening, the listener wakes the
        loop once, for what came meanwhile."""
        if self.listener is None:
            return
        # From a full queue until an empty one: a queue hovering at the low water
        # mark, as in a drain, would otherwise LISTEN and UNLISTEN at every claim.
        queued = len(self._queue)
        if queued >= self._low_water:
            self._backlogged = True
        elif not queued:
            self._backlogged = False
        self.listener.set_listening(not (self._polling or self._breaker.open or self._backlogged))

    def _send(self, client: CounterClient, now: float) -> None:
        queue, guard = self._queue, self.config.request_timeout
        if self.paused:
            # Nothing is sent while paused: the claims go back at the next round.
            self._unsent += [event.id for _, event in queue]
            queue.clear()
            return
        if now < self._hold_until or not queue:
            return
        # Asked once here, not per event (a Signer's truth is a Python call).
        sign = self.config.signer.header_lines if self.config.signer else None
        budget = min(client.free, len(queue))
        if self._bucket.limited:
            budget = self._bucket.grant(budget)
            if not budget:
                metrics.add_rate_limited(self._bucket.wait())
        while budget and queue:
            deadline, event = queue.popleft()
            if now + guard >= deadline:
                # Its lease could run out before the answer comes: leave the
                # event to whoever claims it next rather than risk sending twice.
                logger.debug("Event %s not sent: its lease is about to expire", event.key)
                continue
            body = event.body.encode()
            # Signed per attempt: the timestamp is the attempt's.
            headers = sign(event.key, body) if sign else None
            client.send(event.key, body, event, headers)
            budget -= 1

    def _note(self, finished: list[tuple[store.Claimed, Outcome]]) -> None:
        """Count and log the answers; keep them, with retry delays, for the next round."""
        done, saw, latencies = self._done, self._breaker.saw, self._latencies
        # One wall-clock reading for the answers that one wait() collected (created_at
        # is on the wall clock too): when the dispatcher read them, which under a
        # trickle is up to a poll interval after they came (_answers_awaited).
        answered = time.time()
        for event, outcome in finished:
            saw(outcome)
            if outcome is DELIVERED:
                done.append((event, outcome, None))
                latencies.append(answered - event.created)
                self._round_stats.delivered += 1
            else:
                done.append((event, outcome, self._failure(event, outcome)))

    def _failure(self, event: store.Claimed, outcome: Outcome) -> float | None:
        """Count and log a failed attempt; return the retry delay for a retryable one."""
        attempt = event.attempts + 1
        if outcome.status == GONE:
            return self._gone(event, outcome)
        if outcome.result == Result.FAILED:
            self._round_stats.failed += 1
            logger.error("Event %s failed permanently: %s", event.key, outcome.error)
            return None
        self._round_stats.retried += 1
        if outcome.retry_after is not None and outcome.status in HOLD_STATUSES:
            self._hold(outcome.retry_after, outcome.error)
        delay = retry_delay(
            attempt,
            base=self.config.retry_base,
            cap=self.config.retry_max,
            retry_after=outcome.retry_after,
            rand=self.config.rand,
        )
        logger.warning(
            "Event %s attempt %d failed (%s); retrying in %.1fs",
            event.key, attempt, outcome.error, delay,
        )  # fmt: skip
        return delay

    def _gone(self, event: store.Claimed, outcome: Outcome) -> float:
        """410 Gone: pause the broadcast (at the next round); the event stays pending, due now."""
        if not self.paused:
            logger.error(
                "Counter server answered 410 Gone to event %s: pausing the broadcast "
                "(resume with `manage.py broadcast_resume`)", event.key,
            )  # fmt: skip
            self._pause_reason = f"Counter server answered {outcome.error[:200]}"
        self.paused = self._gone_unstored = True
        self._round_stats.retried += 1
        return 0.0

    def _hold(self, retry_after: float, error: str) -> None:
        """An overloaded answer's Retry-After holds every request back (up to the retry cap)."""
        wait = min(retry_after, self.config.retry_max)
        until = time.monotonic() + wait
        if until > self._hold_until:
            if wait > 0:
                logger.warning("Counter server overloaded (%s): sending nothing for %.1fs",
                               error[:60], wait)  # fmt: skip
                metrics.add_rate_limited(wait)
            self._hold_until = until

    def _wind_down(self, client: CounterClient) -> None:
        """On stop: drop unsent events (released later), let in-flight requests finish, record."""
        self._queue.clear()
        deadline = time.monotonic() + self.config.request_timeout + 1
        while (client.in_flight or self._round is not None) and time.monotonic() < deadline:
            finished, woken = client.wait(deadline - time.monotonic(), self._waker.fileno())
            if woken:
                self._waker.clear()
            self._note(finished)
            if self._round is not None and self._round.future.done():
                self._end_round(self._round)
                self._queue.clear()
        if self._round is not None:  # the database is slower than our patience: let it finish
            self._round.future.exception()
            self._end_round(self._round)
        if self._done:
            done, self._done = self._done, []
            recorded = self._db.submit(
                store.record, owner=self.owner, outcomes=done, now=self.config.clock()
            )
            try:
                recorded.result()
            except Exception:
                # Their leases will expire and they will be sent again (deduped by key).
                logger.exception("Could not record %d outcomes at exit", len(done))

    def _log_summary(self) -> None:
        self._fold_round_stats()
        elapsed = time.monotonic() - self.stats.since
        logger.info(
            "Last %.0fs: %d delivered, %d retried, %d failed permanently",
            elapsed, self.stats.delivered, self.stats.retried, self.stats.failed,
        )  # fmt: skip
        self.stats = Stats()
