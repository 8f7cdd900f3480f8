"""The dispatcher: claims due events, POSTs them concurrently, records outcomes.

One asyncio loop does the network I/O (many requests in flight on keep-alive
connections, bounded by `concurrency`); all database work runs on a single
dedicated thread, because Django's ORM is synchronous and its connections are
per thread. Delivery is at-least-once: an event is marked delivered only after
the counter server answered 2xx, and its Idempotency-Key lets the receiver
count a repeat once.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import close_old_connections

from broadcast import store
from broadcast.breaker import Breaker
from broadcast.client import CounterClient, Outcome, Result
from broadcast.retry import retry_delay
from broadcast.wakeup import listener_for

logger = logging.getLogger("broadcast")


@dataclass
class Config:
    url: str
    concurrency: int = 64
    batch_size: int = 500
    poll_interval: float = 0.02
    lease: float = 60.0
    request_timeout: float = 10.0
    retry_base: float = 1.0
    retry_max: float = 300.0
    summary_interval: float = 60.0

    def __post_init__(self) -> None:
        # An event waits in the local queue, then for its answer, within its
        # lease; a lease shorter than two request timeouts would let it expire
        # mid-flight and another dispatcher send the event a second time.
        if self.lease < 2 * self.request_timeout:
            raise ValueError(
                f"The lease ({self.lease:g} s) must be at least twice the request timeout "
                f"({self.request_timeout:g} s): set BROADCAST_LEASE_SECONDS accordingly."
            )

    @classmethod
    def from_settings(cls, **overrides) -> "Config":
        """Build from settings.COUNTER_SERVER_URL and settings.BROADCAST, then overrides."""
        from django.conf import settings

        conf = settings.BROADCAST
        values = {
            "url": settings.COUNTER_SERVER_URL,
            "concurrency": conf["CONCURRENCY"],
            "batch_size": conf["BATCH_SIZE"],
            "poll_interval": conf["POLL_INTERVAL"],
            "lease": conf["LEASE_SECONDS"],
            "request_timeout": conf["REQUEST_TIMEOUT"],
            "retry_base": conf["RETRY_BASE_SECONDS"],
            "retry_max": conf["RETRY_MAX_SECONDS"],
            "summary_interval": conf["SUMMARY_INTERVAL"],
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class Stats:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    since: float = field(default_factory=time.monotonic)


class Dispatcher:
    """Delivers outbox events to the counter server until stopped.

    A feeder claims due events in batches into a local queue; `concurrency`
    sender coroutines take events from it, POST them, and collect outcomes,
    which the feeder records once per round (store.exchange). Claims are leases
    (60 s by default), far longer than a batch stays in the queue.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = Stats()
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broadcast-db")
        # (lease deadline on the monotonic clock, event)
        self._queue: asyncio.Queue[tuple[float, store.Claimed]] = asyncio.Queue()
        self._sending = 0
        self._done: list[tuple[store.Claimed, Outcome, float | None]] = []
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._breaker = Breaker(threshold=config.concurrency, probe_interval=config.retry_base)
        self._full_round = min(config.concurrency, config.batch_size)
        self._next_connection_check = 0.0  # time.monotonic() of the next check: see _db()

    def stop(self) -> None:
        """Ask for a clean stop: claim nothing more, finish what is in flight."""
        self._stopping.set()
        self._wakeup.set()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, *, once: bool = False) -> None:
        """Deliver until stop() (or, with `once`, until nothing is due)."""
        logger.info("Dispatcher %s delivering to %s", self.owner, self.config.url)
        client = CounterClient(
            self.config.url,
            timeout=self.config.request_timeout,
            max_connections=self.config.concurrency,
        )
        try:
            async with client, listener_for()(self.wake):
                senders = [
                    asyncio.create_task(self._sender(client))
                    for _ in range(self.config.concurrency)
                ]
                await self._feed(once=once)
                await self._stop_senders(senders)
        finally:
            # Whatever was claimed but not sent is due again at once.
            await self._db(store.release, owner=self.owner)
            await self._db(store.close)
            self._db_thread.shutdown(wait=True)
            self._log_summary()

    @property
    def _idle(self) -> bool:
        return self._queue.empty() and self._sending == 0 and not self._done

    async def _feed(self, *, once: bool) -> None:
        next_summary = time.monotonic() + self.config.summary_interval
        low_water = max(self.config.concurrency, self.config.batch_size // 2)
        while not self._stopping.is_set():
            queued = self._queue.qsize()
            wanted = self.config.batch_size - queued if queued < low_water else 0
            limit = self._breaker.allowance(wanted)
            claimed = await self._exchange(limit=limit)
            deadline = time.monotonic() + self.config.lease
            for event in claimed:
                self._queue.put_nowait((deadline, event))
            if once and not claimed and self._idle:
                return
            if time.monotonic() >= next_summary:
                self._log_summary()
                next_summary = time.monotonic() + self.config.summary_interval
            # Fewer than asked for: nothing more is due yet, so wait for a NOTIFY
            # or the poll rather than ask again at once (under a steady trickle
            # that second question is a wasted database round each time).
            if len(claimed) < max(limit, 1) or self._queue.qsize() >= low_water:
                await self._pause()

    async def _exchange(self, *, limit: int) -> list[store.Claimed]:
        """Record the outcomes gathered since the last round and claim up to `limit` more."""
        done, self._done = self._done, []
        if not done and limit <= 0:
            return []
        try:
            return await self._db(
                store.exchange,
                owner=self.owner,
                outcomes=done,
                limit=limit,
                lease=self.config.lease,
            )
        except Exception:
            # The database is away (restart, network): nothing is lost. The
            # outcomes are kept for the next round; if we die first, the leases
            # expire and the events are sent again (the receiver dedupes by key).
            logger.exception("Could not record %d outcomes and claim events; retrying", len(done))
            self._done[:0] = done
            self._next_connection_check = 0.0  # check the connection before the next try
            await asyncio.sleep(1)
            return []

    async def _sender(self, client: CounterClient) -> None:
        while True:
            deadline, event = await self._queue.get()
            if time.monotonic() + self.config.request_timeout >= deadline:
                # Its lease could run out before the answer comes: leave the
                # event to whoever claims it next rather than risk sending twice.
                logger.debug("Event %s not sent: its lease is about to expire", event.key)
                continue
            self._sending += 1
            try:
                outcome = await client.send(key=event.key, payload=event.payload)
                self._done.append((event, outcome, self._note(event, outcome)))
            finally:
                self._sending -= 1
            # A full round's outcomes (as many as can be in flight, or a whole
            # batch) wake the feeder to record them and refill the queue; fewer
            # wait for its next round (a NOTIFY or the poll, at most
            # `poll_interval`), so that a trickle of events does not cost a
            # database round each.
            if len(self._done) >= self._full_round:
                self._wakeup.set()

    def _note(self, event: store.Claimed, outcome: Outcome) -> float | None:
        """Count and log an outcome; return the retry delay for a retryable failure."""
        self._breaker.saw(outcome)
        if outcome.result == Result.DELIVERED:
            self.stats.delivered += 1
            return None
        attempt = event.attempts + 1
        if outcome.result == Result.FAILED:
            self.stats.failed += 1
            logger.error("Event %s failed permanently: %s", event.key, outcome.error)
            return None
        self.stats.retried += 1
        delay = retry_delay(
            attempt,
            base=self.config.retry_base,
            cap=self.config.retry_max,
            retry_after=outcome.retry_after,
        )
        logger.warning(
            "Event %s attempt %d failed (%s); retrying in %.1fs",
            event.key, attempt, outcome.error, delay,
        )  # fmt: skip
        return delay

    async def _pause(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=self.config.poll_interval)
        self._wakeup.clear()

    async def _stop_senders(self, senders: list[asyncio.Task]) -> None:
        """On stop: drop unsent events (released later), let in-flight requests finish."""
        while not self._queue.empty():
            self._queue.get_nowait()
        deadline = time.monotonic() + self.config.request_timeout + 1
        while self._sending and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        await self._exchange(limit=0)

    async def _db(self, function, /, **kwargs):
        def call():
            # What Django does around each request: drop a connection that broke
            # or outlived CONN_MAX_AGE. Once a second, not every round: with
            # CONN_HEALTH_CHECKS each one costs a `SELECT 1` on PostgreSQL, and a
            # connection that breaks in between fails one round, which is retried.
            now = time.monotonic()
            if now >= self._next_connection_check:
                close_old_connections()
                self._next_connection_check = now + 1.0
            return function(**kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._db_thread, call)

    def _log_summary(self) -> None:
        elapsed = time.monotonic() - self.stats.since
        logger.info(
            "Last %.0fs: %d delivered, %d retried, %d failed permanently",
            elapsed, self.stats.delivered, self.stats.retried, self.stats.failed,
        )  # fmt: skip
        self.stats = Stats()
