"""Probing a counter server that is down (broadcast/breaker.py)."""


def test_breaker_opens_after_a_run_of_failures_and_closes_on_success():
    from broadcast.breaker import Breaker
    from broadcast.client import DELIVERED, Outcome, Result

    breaker = Breaker(threshold=3, probe_interval=60)
    refused = Outcome(Result.RETRY, "refused")
    for _ in range(2):
        breaker.saw(refused)
    assert breaker.allowance(500) == 500
    breaker.saw(refused)
    assert breaker.allowance(500) == 1  # one probe...
    assert breaker.allowance(500) == 0  # ...per interval
    breaker.saw(DELIVERED)
    assert breaker.allowance(500) == 500


def test_the_breaker_probes_once_per_interval_of_its_clock():
    from broadcast.breaker import Breaker
    from broadcast.client import Outcome, Result

    now = [100.0]
    breaker = Breaker(threshold=1, probe_interval=5, clock=lambda: now[0])
    breaker.saw(Outcome(Result.RETRY, "refused"))
    assert breaker.allowance(500) == 1
    now[0] = 104.999
    assert breaker.allowance(500) == 0
    now[0] = 105.0
    assert breaker.allowance(500) == 1
    assert breaker.allowance(0) == 0  # nothing wanted: no probe spent
    now[0] = 110.0
    assert breaker.allowance(0) == 0
    assert breaker.allowance(3) == 1
