"""Stop hammering a counter server that is down."""

import logging
import time

from broadcast.client import Outcome, Result

logger = logging.getLogger("broadcast")


class Breaker:
    """Stops claiming while the counter server looks down; probes it with one event at a time.

    After `threshold` retryable failures in a row (and no success), claims are
    limited to one event per `probe_interval`: the events wait in the outbox
    instead of each burning an attempt, a request and a log line against a
    server that refuses them. The first success closes the breaker.
    """

    def __init__(self, *, threshold: int, probe_interval: float, clock=time.monotonic) -> None:
        self.threshold = threshold
        self.probe_interval = probe_interval
        self._clock = clock
        self.failures = 0
        self._next_probe = 0.0

    @property
    def open(self) -> bool:
        return self.failures >= self.threshold

    @property
    def next_probe(self) -> float:
        """When (on its clock) the next probe may be claimed, while open."""
        return self._next_probe

    def saw(self, outcome: Outcome) -> None:
        """Count an answer: only retryable failures mean the server may be down."""
        if outcome.result == Result.RETRY:
            if self.failures + 1 == self.threshold:
                logger.warning("Counter server looks down: probing it with one event at a time")
            self.failures += 1
        else:
            if self.open:
                logger.info("Counter server answers again: delivering at full speed")
            self.failures = 0

    def allowance(self, wanted: int) -> int:
        """How many events may be claimed now, out of `wanted`."""
        if not self.open or wanted <= 0:
            return wanted
        now = self._clock()
        if now < self._next_probe:
            return 0
        self._next_probe = now + self.probe_interval
        return 1
