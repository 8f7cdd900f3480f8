"""The dispatcher: claims due deliveries, POSTs them concurrently, records the decisions.

The loop below only does; every decision is made elsewhere, without I/O:
when rounds run and how much they claim by each destination's pacer
(pacing.py), what an answer means by the policy (policy.py), what may be
claimed and sent by each destination's gates (gates.py), held with its queue
in its lane (lanes.py). Its turn: start a round if a lane's pacer wants one
(rounds.py; on the database thread, or on the loop's own when it has nothing
to send meanwhile: dbcalls.py), take in a round that ended, send what each
lane's gates and share allow from its queue, then wait for answers or a
wake-up (wake.py) and hand each answer to the policy.

Up to `concurrency` requests are in flight on libcurl's keep-alive connections
(client.py). Delivery is at-least-once: a delivery is marked delivered only after
a 2xx, and its event's Idempotency-Key lets the receiver count a repeat once.
Claims are leases (60 s by default): a delivery whose lease would run out before
its answer comes is not sent (whoever claims it next sends it).
"""

import datetime
import logging
import os
import socket
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from broadcast import failing, metrics, store
from broadcast.client import CounterClient
from broadcast.conf import Config
from broadcast.dbcalls import DatabaseCalls
from broadcast.dispatch.lanes import Lane, Lanes
from broadcast.dispatch.pacing import Pacer, Snapshot
from broadcast.dispatch.policy import Answer, Decision, RetryPolicy, Verdict, decide
from broadcast.dispatch.rounds import RoundJob, RoundResult, Switches, run_round, switch_watcher
from broadcast.dispatch.wake import NoAnnouncer, Waker, announcer_for
from broadcast.probe import DueProbe, probe_for

logger = logging.getLogger("broadcast")

# Retention runs at start, then at most this often (seconds).
RETENTION_INTERVAL = 60.0


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


# What the client carries for each request: the delivery, and when its attempt started.
Sent = tuple[store.Claimed, datetime.datetime]


def attempted(
    delivery: store.Claimed, started: datetime.datetime, answer: Answer
) -> store.Attempted:
    """The attempt log's record of `delivery`'s attempt that got `answer`."""
    return store.Attempted(
        delivery=delivery.id, number=delivery.attempts + 1,
        started_at=started, duration_ms=round(answer.duration * 1000),
        status_code=answer.status or None, succeeded=answer.ok, error=answer.error,
        response=answer.response,
    )  # fmt: skip


@dataclass(slots=True)
class Round:
    job: RoundJob
    future: Future[RoundResult]
    woken: bool  # started for a wake-up (which may have announced a change of the switches)


class Dispatcher:
    """Delivers outbox deliveries to their destinations until stopped."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = Stats()
        self.lanes = Lanes(config)
        self.policy = RetryPolicy(base=config.retry_base, cap=config.retry_max, rand=config.rand)
        self._db = DatabaseCalls()
        self._waker = Waker()
        self._switches = switch_watcher()  # the pause and the destinations, read by rounds
        self._paused = False  # the broadcast's pause, as the last round read it
        self._done: list[store.Answered] = []  # decisions waiting to be recorded
        self._attempts: list[store.Attempted] = []  # attempts waiting to be logged with them
        self._failing = failing.Watch()  # which failing clocks the rounds touch
        self._unsent: list[int] = []  # claims dropped while paused, released by the next round
        self._builtin_url: str | None = config.url  # stored by the first round that succeeds
        self._round: Round | None = None
        self._woken = True  # a round at once when the loop starts
        self._once = False
        self._stopping = False
        self._next_retention = 0.0
        # Answers since the last round, for the metrics, by destination name; and the
        # creation-to-2xx seconds of those delivered.
        self._counted: dict[str, Stats] = {}
        self._latencies: dict[str, list[float]] = {}
        self.announcer = NoAnnouncer(self.wake)  # what announces new events, once running
        self._probe: DueProbe | None = None

    @property
    def paused(self) -> bool:
        """The broadcast's pause switch, as the last round read it."""
        return self._paused

    def lane(self, name: str) -> Lane | None:
        """The lane of the destination named `name`, if it has one (it is enabled). From
        any thread: the lanes are copied first (the loop may change them meanwhile)."""
        return next((lane for lane in list(self.lanes) if lane.target.name == name), None)

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
        logger.info("Dispatcher %s delivering (built-in destination: %s)",
                    self.owner, self.config.url or "none")  # fmt: skip
        client = CounterClient(
            timeout=self.config.request_timeout, max_connections=self.config.concurrency
        )
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
            views = self._views(client)
            if self._round is None:
                self._maybe_start_round(client, views)
            if self._round is not None and self._round.future.done():
                self._end_round(self._round, client)
            self._send(client, time.monotonic())
            for lane in self.lanes:
                lane.pacer.queue_seen(len(lane.queue))
            views = self._views(client)
            self.announcer.set_listening(any(p.wants_wakeups(v) for p, v, _ in views))
            if self._once and all(p.finished(v) for p, v, _ in views):
                return
            answers, woken = client.wait(
                min(p.timeout(v) for p, v, _ in views), self._waker.fileno(),
                answers=any(p.collect_now(v) for p, v, _ in views),
            )  # fmt: skip
            if woken:
                self._waker.clear()
            self._decide(answers)
            now = time.monotonic()
            if now >= next_summary:
                self._log_summary()
                next_summary = now + self.config.summary_interval

    def _views(self, client: CounterClient) -> list[tuple[Pacer, Snapshot, Lane | None]]:
        """Each lane's pacer and what it sees now (the idle pacer's, without lanes)."""
        now = time.monotonic()
        shared: dict[str, Any] = {
            "now": now, "answers": len(self._done), "round_running": self._round is not None,
            "woken": self._woken, "listening": self.announcer.listening.is_set(),
            "once": self._once,
        }  # fmt: skip
        if not self.lanes:
            return [(self.lanes.idle, Snapshot(paused=self._paused, **shared), None)]
        views: list[tuple[Pacer, Snapshot, Lane | None]] = []
        for lane in self.lanes:
            gates = lane.gates
            view = Snapshot(
                queued=len(lane.queue), in_flight=lane.in_flight, paused=gates.paused,
                free=min(client.free, self.lanes.free(lane)), moved_at=lane.moved_at,
                claims_resume_at=gates.claims_resume_at(now), rate_limited=gates.rate.limited,
                sends_resume_at=gates.sends_resume_at(now), **shared,
            )  # fmt: skip
            views.append((lane.pacer, view, lane))
        return views

    def _maybe_start_round(
        self, client: CounterClient, views: list[tuple[Pacer, Snapshot, Lane | None]]
    ) -> None:
        """Start a round if a lane's pacer wants one and it has something to do."""
        wanted = any(pacer.round_wanted(view) for pacer, view, _ in views)
        if not wanted:
            if not any(pacer.poll_due(view) for pacer, view, _ in views):
                return
            if not self._worth_polling(views):
                for pacer, view, _ in views:  # the probe looked: as a round that found none
                    pacer.nothing_to_do(view)
                return
        self._woken = False
        limits, disable = {}, {}
        for pacer, view, lane in views:
            pacer.round_started(view)
            if lane is not None:
                lane.asked = lane.gates.grant_claims(pacer.claim_size(view), view.now)
                limits[lane.target.id] = lane.asked
                if reason := lane.gates.pause.take_unstored():
                    disable[lane.target.id] = reason
        now = views[0][1].now
        if not (self._done or any(limits.values()) or self._reads_due(views) or disable
                or self._unsent or self._builtin_url is not None):  # fmt: skip
            for pacer, view, lane in views:
                # A lane waiting for a Retry-After or its rate limit's next token has more
                # due, surely: `--once` waits for it. Held by its breaker or its pause, it
                # gives up.
                waiting = lane is not None and lane.gates.held_for_a_while(now)
                pacer.nothing_to_do(view, looked=not waiting)
            return
        self._report()
        rates = {lane.target.id: lane.gates.rate.rate
                 for lane in self.lanes if lane.gates.rate.limited}  # fmt: skip
        job = RoundJob(
            outcomes=self._done, limits=limits, now=self.config.clock(), started=now,
            disable=disable, unsent=self._unsent, builtin_url=self._builtin_url,
            retention_days=self.config.retention_days if self._retention_due(now) else 0.0,
            rates=rates, attempts=self._attempts,
            disable_after=self.config.disable_after_hours,
        )  # fmt: skip
        job.failures, job.recovered = self._failing.news(
            ((delivery.destination, decision) for delivery, decision in job.outcomes),
            self._read_failing,
        )
        self._done, self._unsent, self._attempts = [], [], []
        self._note_retries(job.outcomes)
        args = {"job": job, "owner": self.owner, "lease": self.config.lease,
                "switches": self._switches}  # fmt: skip
        if all(pacer.round_here(view) for pacer, view, _ in views):
            future = self._db.here(run_round, **args)  # ended already: taken in below
        else:
            future = self._db.submit(run_round, **args)
            future.add_done_callback(lambda _: self._waker.wake())
        self._round = Round(job, future, woken=any(view.woken for _, view, _ in views))

    def _reads_due(self, views: list[tuple[Pacer, Snapshot, Lane | None]]) -> bool:
        """Whether a round is due to read the switches: the pause, or a paused lane, waits on
        them; without lanes, they are all there is to look at."""
        return self._paused or not self.lanes or any(view.paused for _, view, _ in views)

    def _worth_polling(self, views: list[tuple[Pacer, Snapshot, Lane | None]]) -> bool:
        """A poll's round unless SQLite's probe says it would find nothing to do."""
        if self._probe is None or self._done or self._unsent or self._reads_due(views):
            return True
        if self._retention_due(views[0][1].now):
            return True
        if any(lane.gates.pause.unstored for lane in self.lanes):
            return True
        return self._probe.due(self.config.clock(), [lane.target.id for lane in self.lanes])

    def _end_round(self, round_: Round, client: CounterClient) -> None:
        """Queue a round's claims, or keep its outcomes for the next if it failed."""
        self._round = None
        job = round_.job
        try:
            result = round_.future.result()
        except Exception:
            # The database is away (restart, network): nothing is lost. The outcomes
            # are kept for the next round; if we die first, the leases expire and
            # the deliveries are sent again (the receiver dedupes by key).
            logger.exception("Could not record %d outcomes and claim deliveries; retrying",
                             len(job.outcomes))  # fmt: skip
            self._done[:0] = job.outcomes
            self._attempts[:0] = job.attempts
            self._unsent[:0] = job.unsent
            for destination, reason in job.disable.items():
                if (lane := self.lanes.get(destination)) is not None:
                    lane.gates.pause.give_back(reason)
            self._db.check_soon()
            now = time.monotonic()
            for pacer in self._pacers():
                pacer.round_failed(now)
            return
        self._builtin_url = None
        if result.announced:
            self._woken = True
        if result.pruned:
            self._next_retention = time.monotonic() + RETENTION_INTERVAL
        self._follow(result.switches, job, client)
        now = time.monotonic()
        for destination, wait in result.dry.items():
            if (dry := self.lanes.get(destination)) is not None:
                dry.gates.rate.ran_dry(wait, now)
        claimed: dict[int, list[store.Claimed]] = {}
        for delivery in result.claimed:
            claimed.setdefault(delivery.destination, []).append(delivery)
        deadline = job.started + self.config.lease  # the leases run from before the claim
        for lane in self.lanes:
            mine = claimed.pop(lane.target.id, [])
            lane.queue.extend((deadline, delivery) for delivery in mine)
            if lane.target.id in job.limits:  # not a lane the round has just made
                asked = job.limits[lane.target.id]
                # A Retry-After or its rate limit held this round's claim back, or the rate
                # cut it to its tokens: more is due.
                held = lane.gates.held_for_a_while(job.started)
                cut_short = held or lane.target.id in result.dry
                lane.pacer.round_ended(claimed=len(mine), asked=asked, started=job.started,
                                       cut_short=cut_short)  # fmt: skip
        for lost in claimed.values():  # a lane gone while its claim ran: released next round
            self._unsent += [delivery.id for delivery in lost]
        if not self.lanes:  # no destination to deliver to: the round found nothing to do
            pacer, view, _ = self._views(client)[0]
            pacer.nothing_to_do(view)
        if round_.woken and not result.fresh:
            for pacer in self._pacers():
                pacer.read_due(self._switches.next_read_at)

    def _follow(self, switches: Switches, job: RoundJob, client: CounterClient) -> None:
        """The lanes follow the destinations as the round read them, and the pauses."""
        known = {lane.target.id: lane.target.name for lane in self.lanes}
        self._unsent += self.lanes.follow(switches.targets)
        now_named = {lane.target.id: lane.target.name for lane in self.lanes}
        for destination, name in known.items():  # gone, or renamed: its series go
            if now_named.get(destination) != name:
                metrics.forget_destination(name)
        for destination, name in now_named.items():  # new, or renamed
            if known.get(destination) != name:
                metrics.add_destination(name)
        client.reserve(self.lanes.connections)
        if switches.paused != self._paused:
            logger.warning("Broadcast paused: claiming and sending nothing until resumed"
                           if switches.paused else "Broadcast resumed")  # fmt: skip
        self._paused = switches.paused
        for lane in self.lanes:
            lane.gates.pause.seen(switches.paused or lane.target.paused,
                                  stored=lane.target.id in job.disable)  # fmt: skip

    def _pacers(self) -> list[Pacer]:
        return [lane.pacer for lane in self.lanes] or [self.lanes.idle]

    def _send(self, client: CounterClient, now: float) -> None:
        started: datetime.datetime | None = None  # the attempts' start, read once for all
        for lane in self.lanes:
            if lane.queue:
                started = started or self.config.clock()
                self._send_lane(client, lane, now, started)

    def _send_lane(
        self, client: CounterClient, lane: Lane, now: float, started: datetime.datetime
    ) -> None:
        queue = lane.queue
        if lane.gates.paused:  # nothing is sent while paused: the claims go back at the next round
            self._unsent += [delivery.id for _, delivery in queue]
            queue.clear()
            return
        # A delivery whose lease could run out before its answer comes is left to whoever
        # claims it next rather than risk sending it twice. The queue is in lease order
        # (claim order), so those are at its head; dropped before the gates grant sends,
        # none of which is then spent on them.
        guard = self.config.request_timeout
        while queue and now + guard >= queue[0][0]:
            _, delivery = queue.popleft()
            logger.debug("Event %s not sent: its lease is about to expire", delivery.key)
        wanted = min(client.free, self.lanes.free(lane), len(queue))
        budget = lane.gates.grant_sends(wanted, now)
        # Asked once here, not per delivery (a Signer's truth is a Python call).
        sign = lane.signer.header_lines if lane.signer else None
        url = lane.target.url
        for _ in range(budget):
            _, delivery = queue.popleft()
            body = lane.body(delivery)
            headers = sign(delivery.key, body) if sign else None  # signed per attempt
            client.send(url, delivery.key, body, (delivery, started), headers)
            lane.in_flight += 1
            lane.moved_at = now

    def _decide(self, answers: list[tuple[Sent, Answer]]) -> None:
        """The policy's decision for each answer, for the gates, the logs and the next round."""
        if not answers:
            return
        now = time.monotonic()
        # One wall-clock reading per batch of answers (created_at is on the wall clock).
        answered = time.time()
        for (delivery, started), answer in answers:
            decision = decide(answer, delivery.attempts + 1, self.policy)
            if self.config.log_successes or not answer.ok:
                self._attempts.append(attempted(delivery, started, answer))
            lane = self.lanes.get(delivery.destination)
            if lane is not None:  # None: its destination was disabled or deleted meanwhile
                lane.in_flight -= 1
                lane.moved_at = now
                lane.gates.observe(decision, now)
            self._done.append((delivery, decision))
            self._count(delivery, decision, answered, lane)

    def _count(
        self, delivery: store.Claimed, decision: Decision, answered: float, lane: Lane | None
    ) -> None:
        name = self.lanes.name_of(delivery.destination)
        counted = self._counted.setdefault(name, Stats())
        if decision.verdict == Verdict.DELIVERED:
            counted.delivered += 1
            self._latencies.setdefault(name, []).append(answered - delivery.created)
        elif decision.verdict == Verdict.FAILED:
            counted.failed += 1
            logger.error("Event %s to %s failed permanently: %s", delivery.key, name,
                         decision.error)  # fmt: skip
        else:
            counted.retried += 1
            if not decision.stop:
                logger.warning("Event %s to %s: attempt %d failed (%s); retrying in %.1fs",
                               delivery.key, name, delivery.attempts + 1, decision.error,
                               decision.delay)  # fmt: skip

    def _read_failing(self, destination: int) -> bool:
        lane = self.lanes.get(destination)
        return lane is not None and lane.target.failing

    def _note_retries(self, outcomes: list[store.Answered]) -> None:
        """Poll again when the soonest retry this round schedules is due (nothing announces
        it). Read after the clock that stamps the retries, so never before they are due."""
        soonest: dict[int, float] = {}
        for delivery, decision in outcomes:
            if decision.verdict == Verdict.RETRY:
                at = soonest.get(delivery.destination, decision.delay)
                soonest[delivery.destination] = min(at, decision.delay)
        now = time.monotonic()
        for destination, delay in soonest.items():
            if (lane := self.lanes.get(destination)) is not None:
                lane.pacer.retry_due(now + delay)

    def _retention_due(self, now: float) -> bool:
        return self.config.retention_days > 0 and now >= self._next_retention

    def _report(self) -> None:
        """This round's figures to the metrics (per round, never per delivery)."""
        self._fold_counts()
        for lane in self.lanes:
            metrics.set_breaker_open(lane.target.name, lane.gates.breaker.open)
            metrics.set_in_flight(lane.target.name, lane.in_flight)

    def _fold_counts(self) -> None:
        for name, counted in self._counted.items():
            metrics.record_round(name, delivered=counted.delivered, retried=counted.retried,
                                 failed=counted.failed,
                                 latencies=self._latencies.get(name, ()))  # fmt: skip
            self.stats.add(counted)
        self._counted, self._latencies = {}, {}

    def _wind_down(self, client: CounterClient) -> None:
        """On stop: drop unsent deliveries (released later), let in-flight requests finish,
        record."""
        for lane in self.lanes:
            lane.queue.clear()
        deadline = time.monotonic() + self.config.request_timeout + 1
        while (client.in_flight or self._round is not None) and time.monotonic() < deadline:
            answers, woken = client.wait(deadline - time.monotonic(), self._waker.fileno())
            if woken:
                self._waker.clear()
            self._decide(answers)
            if self._round is not None and self._round.future.done():
                self._end_round(self._round, client)
                for lane in self.lanes:
                    lane.queue.clear()
        if self._round is not None:  # the database is slower than our patience: let it finish
            self._round.future.exception()
            self._end_round(self._round, client)
        if self._done:
            done, self._done = self._done, []
            attempts, self._attempts = self._attempts, []
            recorded = self._db.submit(store.record, owner=self.owner, outcomes=done,
                                       attempts=attempts, now=self.config.clock())  # fmt: skip
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
