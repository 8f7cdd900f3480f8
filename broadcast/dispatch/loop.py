"""The dispatcher: claims due events, POSTs them concurrently, records the decisions.

The loop below only does; every decision is made elsewhere, without I/O:
when rounds run and how much they claim by the pacer (pacing.py), what an
answer means by the policy (policy.py), what may be claimed and sent by the
destination's gates (gates.py). Its turn: start a round if one is due (rounds.py;
on the database thread, or on the loop's own when it has nothing to send
meanwhile: dbcalls.py), take in a round that ended, send what the gates
allow from the local queue, then wait for answers or a wake-up (wake.py) and
hand each answer to the policy.

Up to `concurrency` requests are in flight on libcurl's keep-alive connections
(client.py). Delivery is at-least-once: an event is marked delivered only after
a 2xx, and its Idempotency-Key lets the receiver count a repeat once. Claims are
leases (60 s by default): an event whose lease would run out before its answer
comes is not sent (whoever claims it next sends it).
"""

import logging
import os
import socket
import time
import uuid
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from broadcast import control, metrics, store
from broadcast.client import CounterClient
from broadcast.conf import Config
from broadcast.dbcalls import DatabaseCalls
from broadcast.dispatch.gates import Gates
from broadcast.dispatch.pacing import Pace, Pacer, Snapshot
from broadcast.dispatch.policy import Answer, Decision, RetryPolicy, Verdict, decide
from broadcast.dispatch.rounds import RoundJob, RoundResult, run_round
from broadcast.dispatch.wake import NoAnnouncer, Waker, announcer_for
from broadcast.probe import DueProbe, probe_for

logger = logging.getLogger("broadcast")

# Retention runs at start, then at most this often (seconds).
RETENTION_INTERVAL = 60.0
# How the logs and a 410's pause reason name the destination.
LABEL = "Counter server"


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


@dataclass(slots=True)
class Round:
    job: RoundJob
    future: Future[RoundResult]


class Dispatcher:
    """Delivers outbox events to the counter server until stopped."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = Stats()
        self.pacer = Pacer(Pace(
            concurrency=config.concurrency, batch_size=config.batch_size,
            poll_interval=config.poll_interval, request_timeout=config.request_timeout,
            lease=config.lease,
        ))  # fmt: skip
        self.gates = Gates.build(
            LABEL, threshold=config.concurrency, probe_interval=config.probe_interval,
            max_rate=config.max_rate,
        )  # fmt: skip
        self.policy = RetryPolicy(base=config.retry_base, cap=config.retry_max, rand=config.rand)
        self._db = DatabaseCalls()
        self._waker = Waker()
        self._switch = control.PauseWatcher()  # the pause switch, read by rounds
        self._queue: deque[tuple[float, store.Claimed]] = deque()  # (lease deadline, event)
        self._done: list[store.Answered] = []  # decisions waiting to be recorded
        self._unsent: list[int] = []  # claims dropped while paused, released by the next round
        self._round: Round | None = None
        self._woken = True  # a round at once when the loop starts
        self._once = False
        self._stopping = False
        self._next_retention = 0.0
        self._counted = Stats()  # answers since the last round, for the metrics
        self._latencies: list[float] = []  # creation to 2xx (seconds) of those delivered
        self.announcer = NoAnnouncer(self.wake)  # what announces new events, once running
        self._probe: DueProbe | None = None

    @property
    def paused(self) -> bool:
        return self.gates.paused

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
            self.config.url, timeout=self.config.request_timeout,
            max_connections=self.config.concurrency,
        )  # fmt: skip
        self._probe = probe_for()
        try:
            with client, announcer_for()(self.wake) as self.announcer:
                self._deliver(client)
                self._wind_down(client)
        finally:
            if self._probe is not None:
                self._probe.close()
            try:  # whatever was claimed but not sent is due again at once
                self._db.submit(store.release, owner=self.owner, now=self.config.clock()).result()
                self._db.close()
            finally:
                self._waker.close()
                self._log_summary()

    def _deliver(self, client: CounterClient) -> None:
        next_summary = time.monotonic() + self.config.summary_interval
        while not self._stopping:
            view = self._view(client)
            if self._round is None:
                self._maybe_start_round(client, view)
            if self._round is not None and self._round.future.done():
                self._end_round(self._round)
            self._send(client, time.monotonic())
            self.pacer.queue_seen(len(self._queue))
            view = self._view(client)
            self.announcer.set_listening(self.pacer.wants_wakeups(view))
            if self._once and self.pacer.finished(view):
                return
            answers, woken = client.wait(
                self.pacer.timeout(view), self._waker.fileno(), answers=self.pacer.collect_now(view)
            )
            if woken:
                self._waker.clear()
            self._decide(answers)
            if view.now >= next_summary:
                self._log_summary()
                next_summary = view.now + self.config.summary_interval

    def _view(self, client: CounterClient) -> Snapshot:
        now = time.monotonic()
        return Snapshot(
            now=now, queued=len(self._queue), in_flight=client.in_flight,
            answers=len(self._done), round_running=self._round is not None,
            woken=self._woken, paused=self.paused, free=client.free,
            listening=self.announcer.listening.is_set(),
            claims_resume_at=self.gates.claims_resume_at(now),
            sends_resume_at=self.gates.sends_resume_at(now), once=self._once,
        )  # fmt: skip

    def _maybe_start_round(self, client: CounterClient, view: Snapshot) -> None:
        """Start a round if the pacer wants one and it has something to do."""
        wanted = self.pacer.round_wanted(view)
        if not wanted and not (self.pacer.poll_due(view) and self._worth_polling(view)):
            return
        self._woken = False
        self.pacer.round_started(view)
        limit = self.gates.claimable(self.pacer.claim_size(view), view.now)
        pause_reason = self.gates.pause.take_unstored()
        if not (self._done or limit > 0 or self.paused or pause_reason):
            self.pacer.nothing_to_do(view)
            return
        self._report(client.in_flight)
        job = RoundJob(
            outcomes=self._done, limit=limit, now=self.config.clock(), started=view.now,
            pause_reason=pause_reason, unsent=self._unsent,
            retention_days=self.config.retention_days if self._retention_due(view.now) else 0.0,
        )  # fmt: skip
        self._done, self._unsent = [], []
        self._note_retries(job.outcomes)
        args = {"job": job, "owner": self.owner, "lease": self.config.lease, "switch": self._switch}
        if self.pacer.round_here(view):
            future = self._db.here(run_round, **args)  # ended already: taken in below
        else:
            future = self._db.submit(run_round, **args)
            future.add_done_callback(lambda _: self._waker.wake())
        self._round = Round(job, future)

    def _worth_polling(self, view: Snapshot) -> bool:
        """A poll's round unless SQLite's probe says it would find nothing to do."""
        if self._probe is None or self._done or self._unsent or self.paused:
            return True
        if self.gates.pause.unstored or self._retention_due(view.now):
            return True
        if self._probe.due(self.config.clock()):
            return True
        self.pacer.nothing_to_do(view)
        return False

    def _end_round(self, round_: Round) -> None:
        """Queue a round's claims, or keep its outcomes for the next if it failed."""
        self._round = None
        job = round_.job
        try:
            result = round_.future.result()
        except Exception:
            # The database is away (restart, network): nothing is lost. The outcomes
            # are kept for the next round; if we die first, the leases expire and
            # the events are sent again (the receiver dedupes by key).
            logger.exception("Could not record %d outcomes and claim events; retrying",
                             len(job.outcomes))  # fmt: skip
            self._done[:0] = job.outcomes
            self.gates.pause.give_back(job.pause_reason)
            self._db.check_soon()
            self.pacer.round_failed(time.monotonic())
            return
        self.gates.pause.seen(result.paused, stored=bool(job.pause_reason))
        if result.pruned:
            self._next_retention = time.monotonic() + RETENTION_INTERVAL
        deadline = job.started + self.config.lease  # the leases run from before the claim
        self._queue.extend((deadline, event) for event in result.claimed)
        self.pacer.round_ended(claimed=len(result.claimed), asked=job.limit, started=job.started)

    def _send(self, client: CounterClient, now: float) -> None:
        queue = self._queue
        if self.paused:  # nothing is sent while paused: the claims go back at the next round
            self._unsent += [event.id for _, event in queue]
            queue.clear()
            return
        budget = self.gates.sendable(min(client.free, len(queue)), now) if queue else 0
        # Asked once here, not per event (a Signer's truth is a Python call).
        sign = self.config.signer.header_lines if self.config.signer else None
        guard = self.config.request_timeout
        while budget and queue:
            deadline, event = queue.popleft()
            if now + guard >= deadline:
                # Its lease could run out before the answer comes: leave the event
                # to whoever claims it next rather than risk sending it twice.
                logger.debug("Event %s not sent: its lease is about to expire", event.key)
                continue
            body = event.body.encode()
            headers = sign(event.key, body) if sign else None  # signed per attempt
            client.send(event.key, body, event, headers)
            budget -= 1

    def _decide(self, answers: list[tuple[store.Claimed, Answer]]) -> None:
        """The policy's decision for each answer, for the gates, the logs and the next round."""
        if not answers:
            return
        now = time.monotonic()
        # One wall-clock reading per batch of answers (created_at is on the wall clock).
        answered = time.time()
        for event, answer in answers:
            decision = decide(answer, event.attempts + 1, self.policy)
            self.gates.observe(decision, now)
            self._done.append((event, decision))
            self._count(event, decision, answered)

    def _count(self, event: store.Claimed, decision: Decision, answered: float) -> None:
        if decision.verdict == Verdict.DELIVERED:
            self._counted.delivered += 1
            self._latencies.append(answered - event.created)
        elif decision.verdict == Verdict.FAILED:
            self._counted.failed += 1
            logger.error("Event %s failed permanently: %s", event.key, decision.error)
        else:
            self._counted.retried += 1
            if not decision.stop:
                logger.warning("Event %s attempt %d failed (%s); retrying in %.1fs",
                               event.key, event.attempts + 1, decision.error,
                               decision.delay)  # fmt: skip

    def _note_retries(self, outcomes: list[store.Answered]) -> None:
        """Poll again when the soonest retry this round schedules is due (nothing announces
        it). Read after the clock that stamps the retries, so never before they are due."""
        delays = [decision.delay for _, decision in outcomes if decision.verdict == Verdict.RETRY]
        if delays:
            self.pacer.retry_due(time.monotonic() + min(delays))

    def _retention_due(self, now: float) -> bool:
        return self.config.retention_days > 0 and now >= self._next_retention

    def _report(self, in_flight: int) -> None:
        """This round's figures to the metrics (per round, never per event)."""
        self._fold_counts()
        metrics.set_breaker_open(self.gates.breaker.open)
        metrics.set_in_flight(in_flight)

    def _fold_counts(self) -> None:
        counted = self._counted
        if counted:
            metrics.record_round(delivered=counted.delivered, retried=counted.retried,
                                 failed=counted.failed, latencies=self._latencies)  # fmt: skip
            self.stats.add(counted)
            self._counted, self._latencies = Stats(), []

    def _wind_down(self, client: CounterClient) -> None:
        """On stop: drop unsent events (released later), let in-flight requests finish, record."""
        self._queue.clear()
        deadline = time.monotonic() + self.config.request_timeout + 1
        while (client.in_flight or self._round is not None) and time.monotonic() < deadline:
            answers, woken = client.wait(deadline - time.monotonic(), self._waker.fileno())
            if woken:
                self._waker.clear()
            self._decide(answers)
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
        self._fold_counts()
        elapsed = time.monotonic() - self.stats.since
        logger.info(
            "Last %.0fs: %d delivered, %d retried, %d failed permanently",
            elapsed, self.stats.delivered, self.stats.retried, self.stats.failed,
        )  # fmt: skip
        self.stats = Stats()
