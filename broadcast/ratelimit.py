"""A token bucket bounding how many requests a dispatcher starts per second.

`BROADCAST_MAX_RATE` (settings.BROADCAST["MAX_RATE"]) sets the rate; 0 means
unlimited. The dispatcher asks once per loop turn how many of its ready
requests may start (`grant`) and, when none may, how long to wait (`wait`).

Hand-written rather than a library's: the rate limiters on PyPI (aiolimiter,
pyrate-limiter...) hand out one permit per awaited call, while the dispatcher
needs a batch answer per loop turn without a coroutine per request, and an
injected clock for exact tests. It is a dozen lines of arithmetic.

The bucket holds at most `capacity = max(1, rate * BURST_SECONDS)` tokens and
starts full, so over any window of T seconds it grants at most
`capacity + rate * T` requests: over any one second, the rate plus 5% (plus
one token for rounding at rates under 20 per second). The long-run average is
the rate exactly.
"""

import math
import time

from broadcast.conf import broadcast_setting

# How much unused allowance may accumulate: a twentieth of a second's worth, so
# a dispatcher that took a while between rounds can catch up a little, never
# flood. One second's worth would allow twice the rate within one second.
BURST_SECONDS = 0.05

# Float slack, so that 0.999999 of a token earned over exactly 1/rate s counts.
_EPSILON = 1e-9


class TokenBucket:
    """At most `rate` grants per second on average; `rate` 0 or None: unlimited."""

    def __init__(self, rate: float | None, *, clock=time.monotonic) -> None:
        if rate is not None and rate < 0:
            raise ValueError(f"rate must be 0 (unlimited) or positive, not {rate!r}")
        self.rate = float(rate or 0.0)
        self._clock = clock
        self.capacity = max(1.0, self.rate * BURST_SECONDS)
        self._tokens = self.capacity
        self._updated = clock()

    @classmethod
    def from_settings(cls, *, clock=time.monotonic) -> "TokenBucket":
        """The bucket of settings.BROADCAST["MAX_RATE"] (BROADCAST_MAX_RATE)."""
        return cls(broadcast_setting("MAX_RATE", 0.0), clock=clock)

    @property
    def limited(self) -> bool:
        """False when the bucket lets everything through."""
        return self.rate > 0

    def grant(self, wanted: int) -> int:
        """How many of `wanted` requests may start now; those tokens are spent."""
        if not self.limited or wanted <= 0:
            return max(wanted, 0)
        self._refill()
        granted = min(wanted, math.floor(self._tokens + _EPSILON))
        self._tokens -= granted
        return granted

    def wait(self) -> float:
        """Seconds until the next request may start (0.0 if one may start now)."""
        if not self.limited:
            return 0.0
        self._refill()
        missing = 1.0 - self._tokens
        return 0.0 if missing <= _EPSILON else missing / self.rate

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
