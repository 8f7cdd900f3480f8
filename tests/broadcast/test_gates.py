"""The gates in front of a destination (broadcast/dispatch/gates.py), on an explicit time."""

import math

import pytest

from broadcast import metrics
from broadcast.dispatch.gates import Breaker, Gates, Hold, Pause
from broadcast.dispatch.policy import DELIVERED, Decision, Verdict

RETRY = Decision(Verdict.RETRY, delay=1.0, error="refused")
FAILED = Decision(Verdict.FAILED, error="HTTP 400")
GONE = Decision(Verdict.RETRY, stop="answered HTTP 410: gone", error="HTTP 410: gone")
# How a lane labels its destination's gates (broadcast/dispatch/lanes.py).
NAME = "counter-server"
LABEL = f"Destination {NAME}"


def test_the_breaker_opens_after_a_run_of_retries_and_closes_on_any_other_answer(caplog):
    breaker = Breaker(LABEL, threshold=3, probe_interval=60)
    for _ in range(2):
        breaker.observe(RETRY, 0.0)
    assert breaker.grant_claims(500, 0.0) == 500
    assert breaker.claims_resume_at(0.0) is None
    assert "looks down" not in caplog.text
    breaker.observe(RETRY, 0.0)
    assert f"{LABEL} looks down: probing it with one event at a time" in caplog.text
    assert breaker.grant_claims(500, 0.0) == 1  # one probe...
    assert breaker.grant_claims(500, 0.0) == 0  # ...per interval
    assert breaker.claims_resume_at(0.0) == 60.0
    breaker.observe(FAILED, 1.0)  # an answer that is not a retry: the server is up
    assert breaker.grant_claims(500, 1.0) == 500
    assert f"{LABEL} answers again: delivering at full speed" in caplog.text


def test_the_breaker_probes_once_per_interval():
    breaker = Breaker(LABEL, threshold=1, probe_interval=5)
    breaker.observe(RETRY, 100.0)
    assert breaker.grant_claims(500, 100.0) == 1
    assert breaker.grant_claims(500, 104.999) == 0
    assert breaker.grant_claims(500, 105.0) == 1
    assert breaker.grant_claims(0, 105.0) == 0  # nothing wanted: no probe spent
    assert breaker.grant_claims(0, 110.0) == 0
    assert breaker.grant_claims(3, 110.0) == 1
    breaker.observe(DELIVERED, 111.0)
    assert breaker.grant_claims(3, 111.0) == 3


def test_a_hold_stops_sends_and_a_rate_limited_ones_claims_until_it_has_passed():
    unlimited = Hold(NAME)
    unlimited.observe(Decision(Verdict.RETRY, delay=30, hold=30), 10.0)
    assert unlimited.grant_sends(5, 39.9) == 0 and unlimited.sends_resume_at(20.0) == 40.0
    assert unlimited.grant_claims(5, 20.0) == 5  # its queue fills meanwhile
    assert unlimited.claims_resume_at(20.0) is None

    hold = Hold(NAME, holds_claims=True)
    assert hold.claims_resume_at(0.0) is None
    hold.observe(Decision(Verdict.RETRY, delay=30, hold=30), 10.0)
    assert hold.grant_sends(5, 39.9) == 0 and hold.grant_claims(5, 39.9) == 0
    assert hold.sends_resume_at(20.0) == 40.0 and hold.claims_resume_at(20.0) == 40.0
    hold.observe(Decision(Verdict.RETRY, delay=5, hold=5), 20.0)  # ends sooner: ignored
    assert hold.sends_resume_at(20.0) == 40.0 and hold.claims_resume_at(20.0) == 40.0
    assert hold.grant_sends(5, 40.0) == 5 and hold.grant_claims(5, 40.0) == 5
    assert hold.claims_resume_at(40.0) is None


def test_a_410_stops_the_destination_at_once_and_hands_its_reason_to_one_round(caplog):
    pause = Pause(LABEL)
    pause.observe(GONE, 0.0)
    assert pause.paused and pause.grant_sends(3, 0.0) == 0 and pause.grant_claims(3, 0.0) == 0
    assert pause.sends_resume_at(0.0) == math.inf
    assert f"{LABEL} answered HTTP 410: gone: disabling it (enable it again" in caplog.text
    reason = pause.take_unstored()  # the round's, which disables the destination with it
    assert reason == "Destination counter-server answered HTTP 410: gone"
    assert pause.take_unstored() == ""
    pause.seen(False, stored=False)  # a round that read the switch before the pause was stored
    assert pause.paused
    pause.seen(True, stored=True)
    pause.seen(False, stored=False)  # resumed by an operator
    assert not pause.paused
    assert f"{LABEL} resumed" in caplog.text


def test_a_failed_round_gives_the_410s_reason_back_for_the_next():
    pause = Pause(LABEL)
    pause.observe(GONE, 0.0)
    reason = pause.take_unstored()
    pause.give_back(reason)
    assert pause.take_unstored() == reason


def test_a_410_while_paused_by_an_operator_leaves_the_resume_to_them(caplog):
    pause = Pause(LABEL)
    pause.seen(True, stored=False)
    assert f"{LABEL} paused: claiming and sending nothing until resumed" in caplog.text
    pause.observe(GONE, 0.0)
    assert pause.take_unstored() == ""
    pause.seen(False, stored=False)
    assert not pause.paused


@pytest.mark.parametrize(
    ("decisions", "grant_claims", "grant_sends"),
    [
        ([], 10, 4),  # sent: the rate's burst (80/s, a twentieth of a second's worth)
        ([RETRY, RETRY], 1, 4),  # the breaker open (threshold 2): one probe
        ([Decision(Verdict.RETRY, delay=9, hold=9)], 0, 0),  # held
        ([GONE], 0, 0),  # paused
    ],
)
def test_the_most_restrictive_gate_decides(decisions, grant_claims, grant_sends):
    gates = Gates.build(NAME, threshold=2, probe_interval=1.0, max_rate=80)
    for decision in decisions:
        gates.observe(decision, 0.0)
    assert gates.grant_claims(10, 0.0) == grant_claims
    assert gates.grant_sends(10, 0.0) == grant_sends


def test_a_hold_spends_no_probe_of_an_open_breaker():
    gates = Gates.build(NAME, threshold=2, probe_interval=5.0, max_rate=80)
    for _ in range(2):  # the breaker opens; the second answer's Retry-After holds 10 s
        gates.observe(Decision(Verdict.RETRY, delay=10, hold=10), 0.0)
    assert gates.breaker.open
    assert gates.grant_claims(10, 3.0) == 0  # held: the probe is not spent on it
    assert gates.grant_claims(10, 10.0) == 1  # the hold over: the breaker's probe at once


@pytest.mark.parametrize(
    ("decisions", "dry", "held"),
    [
        ([], False, False),
        ([Decision(Verdict.RETRY, delay=9, hold=9)], False, True),  # a Retry-After
        ([], True, True),  # the rate limit's next token
        ([RETRY, RETRY], False, False),  # the breaker: waits on the destination
        ([GONE], False, False),  # paused: waits on an operator
    ],
)
def test_claims_are_held_for_a_while_by_a_retry_after_or_the_rate_limit_only(decisions, dry, held):
    gates = Gates.build(NAME, threshold=2, probe_interval=1.0, max_rate=80)
    for decision in decisions:
        gates.observe(decision, 0.0)
    if dry:
        gates.rate.ran_dry(0.5, now=0.0)
    assert gates.held_for_a_while(0.1) == held


def test_a_dry_bucket_holds_claims_until_its_next_token_and_counts_the_wait(caplog):
    gates = Gates.build(NAME, threshold=2, probe_interval=1.0, max_rate=10)
    assert gates.rate.limited
    before = (
        metrics.default().registry.get_sample_value(
            "broadcast_rate_limited_seconds_total", {"destination": NAME}
        )
        or 0.0
    )
    gates.rate.ran_dry(0.1, now=5.0)
    assert gates.grant_claims(10, 5.05) == 0
    assert gates.claims_resume_at(5.05) == pytest.approx(5.1)
    assert gates.grant_claims(10, 5.1) == 10
    assert gates.claims_resume_at(5.1) is None
    after = metrics.default().registry.get_sample_value(
        "broadcast_rate_limited_seconds_total", {"destination": NAME}
    )
    assert after - before == pytest.approx(0.1)


def test_a_rate_limited_destinations_sends_keep_to_its_rate_whatever_waited_to_be_sent():
    """Claims that waited to be sent (the machine stalled, a slow answer held the
    connections) go out at the rate, not together with the next round's."""
    gates = Gates.build(NAME, threshold=2, probe_interval=1.0, max_rate=10)
    assert gates.grant_sends(10, 5.0) == 1  # a twentieth of a second's worth, at least one
    assert gates.grant_sends(10, 5.05) == 0
    assert gates.sends_resume_at(5.05) == pytest.approx(5.1)
    assert gates.grant_sends(10, 5.1) == 1
    assert gates.grant_sends(10, 3600.0) == 1  # an idle hour banks no more than that
    unlimited = Gates.build(NAME, threshold=2, probe_interval=1.0, max_rate=0)
    assert unlimited.grant_sends(10, 5.0) == 10 and unlimited.sends_resume_at(5.0) == 5.0


def test_a_rate_limit_set_or_removed_decides_whether_a_hold_holds_claims():
    gates = Gates.build(NAME, threshold=2, probe_interval=1.0, max_rate=0)
    gates.observe(Decision(Verdict.RETRY, delay=9, hold=9), 0.0)
    assert gates.grant_claims(10, 1.0) == 10
    gates.set_rate(5.0)
    assert gates.grant_claims(10, 1.0) == 0 and gates.held_for_a_while(1.0)
    gates.set_rate(0.0)
    assert gates.grant_claims(10, 1.0) == 10 and not gates.held_for_a_while(1.0)


def test_a_new_rate_keeps_the_other_gates_state():
    gates = Gates.build(NAME, threshold=1, probe_interval=1.0, max_rate=0)
    gates.observe(RETRY, 0.0)
    assert not gates.rate.limited and gates.breaker.open
    gates.set_rate(20)
    assert gates.rate.limited and gates.rate.rate == 20 and gates.breaker.open
