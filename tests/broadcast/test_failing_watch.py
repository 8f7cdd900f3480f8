"""Which failing clocks a round touches (broadcast/failing.py `Watch`): a table of cases,
no database."""

import pytest

from broadcast.dispatch.policy import Decision, Verdict
from broadcast.failing import Failures, Watch

OK = Decision(Verdict.DELIVERED)
REFUSED = Decision(Verdict.RETRY, delay=1.0, error="refused")
BAD = Decision(Verdict.FAILED, error="HTTP 400")
A, B = 1, 2


@pytest.mark.parametrize(
    ("decisions", "read_running", "failures", "recovered"),
    [
        ([], set(), {}, set()),
        ([(A, OK)], set(), {}, set()),  # healthy: no statement
        ([(A, OK)], {A}, {}, {A}),  # read running: a success stops it
        ([(A, REFUSED)], set(), {A: Failures(1, "refused")}, set()),
        # counted per destination, the last error kept; a permanent failure counts too
        ([(A, REFUSED), (A, BAD)], set(), {A: Failures(2, "HTTP 400")}, set()),
        # a success in the same round wins over its failures
        ([(A, REFUSED), (A, OK)], set(), {}, set()),
        ([(A, REFUSED), (A, OK)], {A}, {}, {A}),
        # each destination apart
        ([(A, REFUSED), (B, OK)], {B}, {A: Failures(1, "refused")}, {B}),
    ],
)
def test_a_rounds_decisions_tell_which_clocks_to_touch(
    decisions, read_running, failures, recovered
):
    assert Watch().news(decisions, read_running.__contains__) == (failures, recovered)


def test_a_success_stops_the_clock_its_own_failures_started_before_any_read():
    watch = Watch()
    assert watch.news([(A, REFUSED)], lambda _: False) == ({A: Failures(1, "refused")}, set())
    assert watch.news([(A, OK)], lambda _: False) == ({}, {A})
    assert watch.news([(A, OK)], lambda _: False) == ({}, set())  # stopped: no statement again
