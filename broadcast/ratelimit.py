"""A destination's rate limit: a token bucket in the database, shared by every dispatcher.

A destination's `max_rate` (the built-in destination's, when its row sets none:
`BROADCAST_MAX_RATE`) is deliveries per second to it from all dispatchers
together; 0 means unlimited. The bucket's state is one row per destination
(`RateBucket`): a round takes a token for each delivery it may claim for the
destination (`take_tokens`, the row locked while it is read and written back),
claims no more, and gives back what it did not use (`give_back_tokens`); when
the bucket ran dry, the dispatcher holds that destination's claims until the
next token (broadcast/dispatch/gates.py `RateLimit`). The arithmetic is
`TokenBucket`'s.

Hand-written rather than a library's: the rate limiters on PyPI (aiolimiter,
pyrate-limiter...) hand out one permit per awaited call from one process's
memory, while the limit here is the destination's, whatever the number of
dispatchers, and needs a batch answer per round and an injected clock for
exact tests. It is a dozen lines of arithmetic.

The bucket holds at most `capacity = max(1, rate * BURST_SECONDS)` tokens and
starts full, so over any window of T seconds it grants at most
`capacity + rate * T` requests: over any one second, the rate plus 5% (plus
one token for rounding at rates under 20 per second). The long-run average is
the rate exactly.
"""

import datetime
import math

from django.db import transaction
from django.db.models import F

from broadcast.models import RateBucket

# How much unused allowance may accumulate: a twentieth of a second's worth, so
# a dispatcher that took a while between rounds can catch up a little, never
# flood. One second's worth would allow twice the rate within one second.
BURST_SECONDS = 0.05

# Float slack, so that 0.999999 of a token earned over exactly 1/rate s counts.
_EPSILON = 1e-9


class TokenBucket:
    """At most `rate` grants per second on average; `rate` 0 or None: unlimited.

    Its time is given to each call (`now`, any clock's seconds), so that a caller
    with an injected clock, or the database's time, is exact.
    """

    def __init__(
        self, rate: float | None, *, tokens: float | None = None, updated: float | None = None
    ) -> None:
        """A bucket that starts full, or with the state `tokens` at `updated` that a
        previous bucket left, refilled from then at the next call."""
        if rate is not None and rate < 0:
            raise ValueError(f"rate must be 0 (unlimited) or positive, not {rate!r}")
        self.rate = float(rate or 0.0)
        self.capacity = max(1.0, self.rate * BURST_SECONDS)
        self.tokens = self.capacity if tokens is None else min(tokens, self.capacity)
        self.updated = updated  # when `tokens` was right; None: no refill before the first call

    @property
    def limited(self) -> bool:
        """False when the bucket lets everything through."""
        return self.rate > 0

    def grant(self, wanted: int, now: float) -> int:
        """How many of `wanted` requests may start at `now`; those tokens are spent."""
        if not self.limited or wanted <= 0:
            return max(wanted, 0)
        self._refill(now)
        granted = min(wanted, math.floor(self.tokens + _EPSILON))
        self.tokens -= granted
        return granted

    def wait(self, now: float) -> float:
        """Seconds from `now` until the next request may start (0.0 if one may start now)."""
        if not self.limited:
            return 0.0
        self._refill(now)
        missing = 1.0 - self.tokens
        if missing <= _EPSILON:
            return 0.0
        # A clock gone back refills nothing until it is past `updated` again.
        behind = max(0.0, self.updated - now) if self.updated is not None else 0.0
        return behind + missing / self.rate

    def _refill(self, now: float) -> None:
        if self.updated is not None:
            elapsed = max(0.0, now - self.updated)
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now if self.updated is None else max(self.updated, now)


def take_tokens(
    *, destination: int, rate: float, wanted: int, now: datetime.datetime
) -> tuple[int, float]:
    """Take up to `wanted` tokens from the bucket of `destination` (an id) that every
    dispatcher shares, in the database; return how many were granted and the seconds until
    the next one.

    A round takes them before it claims, and claims only as many deliveries, so the
    destination's rate holds across dispatchers. The bucket's row is locked while it is
    read and written back (on SQLite the write transaction serialises it). Its time is
    the dispatchers' injected clock (`now`), so that tests are exact.
    """
    full = TokenBucket(rate).capacity
    with transaction.atomic():
        row, _ = RateBucket.objects.select_for_update().get_or_create(
            destination_id=destination, defaults={"tokens": full, "updated_at": now}
        )
        # The time since the last take, exact (timedelta): a float Unix time loses the
        # microseconds a rate of hundreds a second counts in.
        elapsed = (now - row.updated_at).total_seconds()
        bucket = TokenBucket(rate, tokens=row.tokens, updated=0.0)
        granted = bucket.grant(wanted, elapsed)
        wait = bucket.wait(elapsed)
        # A dispatcher whose clock is behind must not move the bucket's time back: the
        # next take would count that stretch twice.
        row.tokens, row.updated_at = bucket.tokens, max(row.updated_at, now)
        row.save(update_fields=["tokens", "updated_at"])
    return granted, wait


def give_back_tokens(*, destination: int, tokens: int) -> None:
    """Return tokens a round took and did not use (fewer deliveries were due) to the bucket
    of `destination`; the next take caps the bucket at its capacity."""
    with transaction.atomic():  # on SQLite: queued on the write lock, as every writer
        RateBucket.objects.filter(destination_id=destination).update(tokens=F("tokens") + tokens)
