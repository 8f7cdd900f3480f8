"""The delivery policy: what an answer means for the event and for its destination.

One pure function, `decide()`: the counter server's answer (its HTTP status,
Retry-After and error text; status 0 when none came) and the attempts the
event has had in, a `Decision` out. The store writes the decision's status and
delay as they are (broadcast/store.py), the gates take its hold and its stop
(broadcast/dispatch/gates.py), so changing the policy (give up after N attempts,
say) is a change here and nowhere else. No I/O, no clock, no threads: its tests
are tables of cases (tests/broadcast/test_policy.py).

    2xx                                   delivered
    410 Gone                              the destination is stopped (disabled); the
                                          delivery stays pending, due now
    408, 429, 5xx, no answer              retried after a backoff (broadcast/retry.py),
                                          never sooner than a Retry-After
    429, 502, 503, 504 with Retry-After   the same, and the destination is held
                                          that long (up to the retry cap)
    anything else (3xx, other 4xx)        failed for good: the same request cannot succeed
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from broadcast.models import Status
from broadcast.retry import retry_delay

# 408 Request Timeout and 429 Too Many Requests say "later", as do 5xx and no answer.
RETRYABLE_STATUSES = frozenset({408, 429})
# 410 Gone: the receiver asks to stop sending (the Standard Webhooks meaning).
GONE = 410
# Overloaded: a Retry-After with one of these holds the whole destination back.
HOLD_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back for one request: its HTTP status (0: no answer at all), the
    Retry-After in seconds if any, and an error text for anything but a 2xx; for the
    attempt log, the start of the response body and the seconds the request took."""

    status: int
    error: str = ""
    retry_after: float | None = None
    response: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"  # for good: retrying the same request cannot succeed


# The event's status in the outbox for each verdict.
STATUS = {Verdict.DELIVERED: Status.DELIVERED, Verdict.RETRY: Status.PENDING,
          Verdict.FAILED: Status.FAILED}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after an attempt.

    `delay`: seconds until the event is due again (a retry). `hold`: seconds
    during which nothing more is sent to the destination. `stop`: why the
    destination must stop receiving until an operator says otherwise ("" for no).
    `error`: the attempt's error, stored as the event's last error.
    """

    verdict: Verdict
    delay: float = 0.0
    hold: float = 0.0
    stop: str = ""
    error: str = ""

    @property
    def status(self) -> Status:
        return STATUS[self.verdict]


DELIVERED = Decision(Verdict.DELIVERED)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The backoff's first delay and cap (seconds), and the jitter's random source."""

    base: float = 1.0
    cap: float = 300.0
    rand: Callable[[], float] = random.random


def decide(answer: Answer, attempts: int, policy: RetryPolicy) -> Decision:
    """The decision after the attempt numbered `attempts` (1 for the first) got `answer`."""
    if answer.ok:
        return DELIVERED
    if answer.status == GONE:
        return Decision(Verdict.RETRY, stop=f"answered {answer.error[:200]}", error=answer.error)
    retryable = answer.status == 0 or answer.status in RETRYABLE_STATUSES or answer.status >= 500
    if not retryable:
        return Decision(Verdict.FAILED, error=answer.error)
    retry_after = answer.retry_after
    delay = retry_delay(
        attempts, base=policy.base, cap=policy.cap, retry_after=retry_after, rand=policy.rand
    )
    hold = 0.0
    if retry_after is not None and answer.status in HOLD_STATUSES:
        hold = min(retry_after, policy.cap)
    return Decision(Verdict.RETRY, delay=delay, hold=hold, error=answer.error)
