"""The gates in front of a destination: what may be claimed for it and sent to it, and when.

Each gate has the same small interface (`Gate`): it grants claims and sends
(how many of the events wanted may be claimed now, how many of the requests
ready may start now: what it grants is spent, a breaker's probe or a rate's
tokens), it answers from when a held claim or send may go again, and it
observes each decision of the policy (broadcast/dispatch/policy.py). A
destination has one `Gates`, the set of them; a gate keeps no state but its
own, takes the time as an argument (the loop's monotonic clock) and does no
I/O but a log line or a metric.

    Pause     nothing claimed or sent while paused (the Control row, the destination's
              pause, or a 410, which disables the destination)
    Breaker   one claim per probe interval while the destination looks down
    Hold      nothing sent (nor, rate-limited, claimed) until a Retry-After has passed
    RateLimit at most `max_rate` deliveries claimed per second by every dispatcher
              together: the rounds take tokens from the destination's bucket in
              the database (broadcast/ratelimit.py); while it is dry, no claim.
              And at most `max_rate` sent per second by this dispatcher.
"""

import logging
import math

from broadcast import metrics
from broadcast.dispatch.policy import Decision, Verdict
from broadcast.ratelimit import TokenBucket

logger = logging.getLogger("broadcast")

NEVER = math.inf


class Gate:
    """Lets everything through; each gate overrides what it limits."""

    def observe(self, decision: Decision, now: float) -> None:
        """Take in the decision made for one answer."""

    def grant_claims(self, wanted: int, now: float) -> int:
        """How many of `wanted` events may be claimed now (what is granted is spent)."""
        return wanted

    def grant_sends(self, wanted: int, now: float) -> int:
        """How many of `wanted` requests may start now (what is granted is spent)."""
        return wanted

    def claims_resume_at(self, now: float) -> float | None:
        """While this gate holds claims back: when the next may be granted. None: not held."""
        return None

    def sends_resume_at(self, now: float) -> float:
        """When a request may start, if none may now (`now` if one may)."""
        return now


class Pause(Gate):
    """The pause switches (the broadcast's, the destination's) as the last round read them,
    or a 410's stop, not yet stored.

    A 410 stops the destination at once; its reason waits in `unstored` until a
    round stores it (disabling the destination: `take_unstored`), and until that
    round has ended, a round that read the switches before it does not resume (`seen`).
    """

    def __init__(self, label: str) -> None:
        self.label = label  # how the logs and the reason name the destination
        self.paused = False
        self.unstored = ""  # a 410's reason that no round has taken yet
        self._awaiting_store = False  # taken by a round that has not ended yet, or not taken

    def observe(self, decision: Decision, now: float) -> None:
        if not decision.stop or self.paused:
            return
        # A warning from each dispatcher that sees it; the round that disables it logs an
        # error once (broadcast/destinations.py `disable_and_announce`).
        logger.warning("%s %s: disabling it (enable it again in the admin or the API once it "
                       "takes deliveries)", self.label, decision.stop)  # fmt: skip
        self.unstored = f"{self.label} {decision.stop}"
        self.paused = self._awaiting_store = True

    def take_unstored(self) -> str:
        """The reason for a round to store (then forgotten here); "" for none."""
        reason, self.unstored = self.unstored, ""
        return reason

    def give_back(self, reason: str) -> None:
        """A round that was to store `reason` failed: the next one stores it."""
        self.unstored = self.unstored or reason

    def seen(self, paused: bool, *, stored: bool) -> None:
        """A round ended, having read the switch as `paused`, and stored a 410 (`stored`) or not."""
        if stored:
            self._awaiting_store = False
        elif self._awaiting_store:
            paused = True  # the round read the switch before our 410's pause was stored
        if paused != self.paused:
            logger.warning("%s paused: claiming and sending nothing until resumed"
                           if paused else "%s resumed", self.label)  # fmt: skip
        self.paused = paused

    def grant_claims(self, wanted: int, now: float) -> int:
        return 0 if self.paused else wanted

    def grant_sends(self, wanted: int, now: float) -> int:
        return 0 if self.paused else wanted

    def sends_resume_at(self, now: float) -> float:
        return NEVER if self.paused else now


class Breaker(Gate):
    """Stops claiming while the destination looks down; probes it with one event at a time.

    After `threshold` retries in a row (and no success), claims are limited to
    one event per `probe_interval`: the events wait in the outbox instead of
    each burning an attempt, a request and a log line against a destination
    that refuses them. The first answer that is not a retry closes it.
    """

    def __init__(self, label: str, *, threshold: int, probe_interval: float) -> None:
        self.label = label
        self.threshold = threshold
        self.probe_interval = probe_interval
        self.failures = 0
        self.next_probe = 0.0

    @property
    def open(self) -> bool:
        return self.failures >= self.threshold

    def observe(self, decision: Decision, now: float) -> None:
        if decision.verdict == Verdict.RETRY:
            self.failures += 1
            if self.failures == self.threshold:
                logger.warning("%s looks down: probing it with one event at a time", self.label)
            return
        if self.open:
            logger.info("%s answers again: delivering at full speed", self.label)
        self.failures = 0

    def grant_claims(self, wanted: int, now: float) -> int:
        if not self.open or wanted <= 0:
            return wanted
        if now < self.next_probe:
            return 0
        self.next_probe = now + self.probe_interval
        return 1

    def claims_resume_at(self, now: float) -> float | None:
        return self.next_probe if self.open else None


class Hold(Gate):
    """Nothing is sent until an overloaded answer's Retry-After (the policy's `hold`) has
    passed.

    A rate-limited destination's claims are held too (`holds_claims`): claims made
    meanwhile would wait in the queue and all be sent the moment it ends, past its rate.
    An unlimited one's go on, so that its queue is ready at the end (it gets full speed
    then anyway), and so that `--once` learns whether anything is due for it.
    """

    def __init__(self, name: str, *, holds_claims: bool = False) -> None:
        self.name = name  # the destination's, for the logs and the metrics
        self.holds_claims = holds_claims
        self.until = 0.0

    def observe(self, decision: Decision, now: float) -> None:
        until = now + decision.hold
        if decision.hold > 0 and until > self.until:
            logger.warning("Destination %s overloaded (%s): sending nothing for %.1fs",
                           self.name, decision.error[:60], decision.hold)  # fmt: skip
            metrics.add_rate_limited(self.name, decision.hold)
            self.until = until

    def grant_claims(self, wanted: int, now: float) -> int:
        return 0 if self.holds_claims and now < self.until else wanted

    def grant_sends(self, wanted: int, now: float) -> int:
        return 0 if now < self.until else wanted

    def claims_resume_at(self, now: float) -> float | None:
        return self.until if self.holds_claims and now < self.until else None

    def sends_resume_at(self, now: float) -> float:
        return max(now, self.until)


class RateLimit(Gate):
    """At most `rate` deliveries per second (0: unlimited), claimed by every dispatcher
    together, and sent by each.

    The bucket is in the database: a round takes a token for each delivery it claims
    for the destination and claims no more than it got (broadcast/ratelimit.py
    `take_tokens`). When it got fewer than it could use, the round says when the next
    token comes (`ran_dry`), and until then this gate holds the destination's claims
    back, so the next round for it comes then.

    The sends are paced here too, by a bucket of this dispatcher's own: claims that
    waited to be sent (the machine stalled, or a slow answer held the connections) would
    otherwise go out together with the next round's, past the rate.
    """

    def __init__(self, name: str, rate: float) -> None:
        self.name = name
        self.rate = rate
        self.resume_at = 0.0
        self.sends = TokenBucket(rate)

    @property
    def limited(self) -> bool:
        return self.rate > 0

    def ran_dry(self, wait: float, now: float) -> None:
        """The bucket ran dry in a round: its next token comes `wait` seconds after `now`."""
        self.resume_at = now + wait
        metrics.add_rate_limited(self.name, wait)

    def grant_claims(self, wanted: int, now: float) -> int:
        return 0 if now < self.resume_at else wanted

    def claims_resume_at(self, now: float) -> float | None:
        return self.resume_at if now < self.resume_at else None

    def grant_sends(self, wanted: int, now: float) -> int:
        return self.sends.grant(wanted, now)

    def sends_resume_at(self, now: float) -> float:
        return now + self.sends.wait(now)


class Gates:
    """One destination's gates, asked together: the most restrictive answer wins."""

    def __init__(self, *, pause: Pause, breaker: Breaker, hold: Hold, rate: RateLimit) -> None:
        self.pause, self.breaker, self.hold, self.rate = pause, breaker, hold, rate
        self.all = self._in_order()

    def _in_order(self) -> tuple[Gate, ...]:
        # Asked in this order, each what the ones before let through: the breaker last, so
        # that it spends its probe only on a claim that the others let go.
        return (self.pause, self.hold, self.rate, self.breaker)

    @classmethod
    def build(cls, name: str, *, threshold: int, probe_interval: float, max_rate: float) -> "Gates":
        """The gates of the destination `name`."""
        label = f"Destination {name}"
        return cls(
            pause=Pause(label),
            breaker=Breaker(label, threshold=threshold, probe_interval=probe_interval),
            hold=Hold(name, holds_claims=max_rate > 0),
            rate=RateLimit(name, max_rate),
        )

    def set_rate(self, max_rate: float) -> None:
        """A new rate limit (the destination's changed); the other gates keep their state."""
        self.rate = RateLimit(self.rate.name, max_rate)
        self.hold.holds_claims = max_rate > 0
        self.all = self._in_order()

    def observe(self, decision: Decision, now: float) -> None:
        for gate in self.all:
            gate.observe(decision, now)

    def grant_claims(self, wanted: int, now: float) -> int:
        for gate in self.all:
            wanted = gate.grant_claims(wanted, now)
        return wanted

    def grant_sends(self, wanted: int, now: float) -> int:
        for gate in self.all:
            if wanted <= 0:
                return 0
            wanted = gate.grant_sends(wanted, now)
        return wanted

    def claims_resume_at(self, now: float) -> float | None:
        held = [at for gate in self.all if (at := gate.claims_resume_at(now)) is not None]
        return max(held) if held else None

    def sends_resume_at(self, now: float) -> float:
        return max(gate.sends_resume_at(now) for gate in self.all)

    def held_for_a_while(self, now: float) -> bool:
        """Whether claims are held back by a gate that lets them go by itself, soon: a
        Retry-After's hold, the rate limit's next token (not the breaker, which waits on
        the destination, nor the pause, which waits on an operator)."""
        return any(gate.claims_resume_at(now) is not None for gate in (self.hold, self.rate))

    @property
    def paused(self) -> bool:
        return self.pause.paused
