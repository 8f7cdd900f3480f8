"""The delivery policy (broadcast/dispatch/policy.py): an answer in, a decision out."""

import pytest

from broadcast.dispatch.policy import Answer, Decision, RetryPolicy, Verdict, decide
from broadcast.models import Status

POLICY = RetryPolicy(base=1.0, cap=300.0, rand=lambda: 0.5)  # no jitter: exactly the backoff


@pytest.mark.parametrize(
    ("answer", "attempts", "expected"),
    [
        (Answer(200), 1, Decision(Verdict.DELIVERED)),
        (Answer(204), 7, Decision(Verdict.DELIVERED)),
        (Answer(500, "HTTP 500: x"), 1, Decision(Verdict.RETRY, delay=1.0, error="HTTP 500: x")),
        (Answer(502, "HTTP 502"), 3, Decision(Verdict.RETRY, delay=4.0, error="HTTP 502")),
        (Answer(408, "HTTP 408"), 2, Decision(Verdict.RETRY, delay=2.0, error="HTTP 408")),
        (Answer(0, "ConnectError: refused"), 1,
         Decision(Verdict.RETRY, delay=1.0, error="ConnectError: refused")),
        (Answer(0, "timed out"), 20, Decision(Verdict.RETRY, delay=300.0, error="timed out")),
        # Retry-After: never sooner; on an overloaded status, the destination is held too...
        (Answer(503, "HTTP 503", 30.0), 1,
         Decision(Verdict.RETRY, delay=30.0, hold=30.0, error="HTTP 503")),
        (Answer(429, "HTTP 429", 1000.0), 1,
         Decision(Verdict.RETRY, delay=1000.0, hold=300.0, error="HTTP 429")),
        # ...but not on a 500, and a 400's Retry-After changes nothing.
        (Answer(500, "HTTP 500", 30.0), 1, Decision(Verdict.RETRY, delay=30.0, error="HTTP 500")),
        (Answer(400, "HTTP 400", 30.0), 1, Decision(Verdict.FAILED, error="HTTP 400")),
        (Answer(302, "HTTP 302"), 1, Decision(Verdict.FAILED, error="HTTP 302")),
        (Answer(404, "HTTP 404"), 1, Decision(Verdict.FAILED, error="HTTP 404")),
        (Answer(422, "HTTP 422"), 1, Decision(Verdict.FAILED, error="HTTP 422")),
        # 410: the destination stops; the event stays pending, due at once.
        (Answer(410, "HTTP 410: gone"), 1,
         Decision(Verdict.RETRY, stop="answered HTTP 410: gone", error="HTTP 410: gone")),
    ],
)  # fmt: skip
def test_each_answer_gets_its_decision(answer, attempts, expected):
    assert decide(answer, attempts, POLICY) == expected


@pytest.mark.parametrize(
    ("verdict", "status"),
    [(Verdict.DELIVERED, Status.DELIVERED), (Verdict.RETRY, Status.PENDING),
     (Verdict.FAILED, Status.FAILED)],
)  # fmt: skip
def test_the_store_writes_the_verdicts_status(verdict, status):
    assert Decision(verdict).status == status


def test_the_jitter_comes_from_the_policys_random_source():
    low = RetryPolicy(base=1.0, cap=300.0, rand=lambda: 0.0)
    assert decide(Answer(500), 3, low).delay == pytest.approx(3.2)
