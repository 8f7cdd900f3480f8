"""When to try an event again after a failed delivery."""

import random
from email.utils import parsedate_to_datetime

from django.utils import timezone


def retry_delay(
    attempts: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rand=random.random,
) -> float:
    """Seconds to wait before the next attempt, after `attempts` failed ones.

    Exponential backoff (base, 2 x base, 4 x base ... capped at `cap`) with
    +/-20% jitter, so that a burst of failures does not come back as a burst of
    retries. A server's Retry-After is honoured: never retry sooner than it asks.
    """
    exponent = min(max(attempts - 1, 0), 62)  # 2**62 seconds is past any cap
    backoff = min(cap, base * 2**exponent)
    delay = min(cap, backoff * (0.8 + 0.4 * rand()))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - timezone.now()).total_seconds(), 0.0)
