"""The pacing (broadcast/dispatch/pacing.py): snapshots in, timing out. No threads, no clock."""

import math

import pytest

from broadcast.dispatch.pacing import (
    BUSY_CLAIM,
    BUSY_ROUNDS,
    FAILED_ROUND_RETRY,
    SAFETY_NET_POLL,
    SLOW_POLL,
    Pace,
    Pacer,
    Snapshot,
)

# concurrency 8, batch 50: a full round is 8 requests, the low water mark 25 events.
PACE = Pace(concurrency=8, batch_size=50, poll_interval=0.02, request_timeout=10.0, lease=60.0)


def pacer_after_a_round_at(t: float, *, claimed: int = 0, asked: int = 50, **seen) -> Pacer:
    pacer = Pacer(PACE)
    pacer.round_started(Snapshot(now=t, **seen))
    pacer.round_ended(claimed=claimed, asked=asked, started=t)
    return pacer


@pytest.mark.parametrize(
    ("snapshot", "wanted"),
    [
        (Snapshot(now=10.0, woken=True), True),
        (Snapshot(now=10.0, answers=25), True),  # a claim's worth of answers
        (Snapshot(now=10.0, answers=24), False),
        (Snapshot(now=10.0), False),
    ],
)
def test_what_wants_a_round_at_once(snapshot, wanted):
    assert pacer_after_a_round_at(10.0).round_wanted(snapshot) is wanted


def test_a_claim_that_got_all_it_asked_for_claims_again_while_the_queue_is_low():
    pacer = pacer_after_a_round_at(10.0, claimed=50, asked=50)
    assert pacer.round_wanted(Snapshot(now=10.0, queued=24))
    # Answers left over by the round that just ended: the next starts without a wait.
    assert pacer.timeout(Snapshot(now=10.0, answers=3, in_flight=5)) == 0.0
    assert not pacer.round_wanted(Snapshot(now=10.0, queued=25))
    fewer = pacer_after_a_round_at(10.0, claimed=3, asked=50)
    assert not fewer.round_wanted(Snapshot(now=10.0, queued=0))


@pytest.mark.parametrize(
    ("seen", "snapshot", "next_round"),
    [
        # Nothing announces events: the poll interval.
        ({}, Snapshot(now=10.0), 10.02),
        # Something does (LISTEN, the doorbell): the safety net.
        ({"listening": True}, Snapshot(now=10.0, listening=True), 10.0 + SAFETY_NET_POLL),
        # Paused: the slow poll, to read the switch.
        ({"paused": True}, Snapshot(now=10.0, paused=True), 10.0 + SLOW_POLL),
        # Answers to record: a poll interval after the last round at the latest...
        ({"listening": True}, Snapshot(now=10.0, answers=3, listening=True), 10.02),
        # ...but beside a full queue (a slow server's trickle), the slow poll.
        ({}, Snapshot(now=10.0, answers=3, queued=25), 10.0 + SLOW_POLL),
        # The queue full and nothing to record: the slow poll.
        ({}, Snapshot(now=10.0, queued=25), 10.0 + SLOW_POLL),
        # The breaker open: its next probe.
        ({"claims_resume_at": 14.0}, Snapshot(now=10.0, claims_resume_at=14.0), 14.0),
    ],
)
def test_when_the_next_round_runs(seen, snapshot, next_round):
    pacer = pacer_after_a_round_at(10.0, **seen)
    assert pacer.next_round_at(snapshot) == pytest.approx(next_round)
    assert not pacer.poll_due(snapshot)
    later = Snapshot(**{**_fields(snapshot), "now": next_round + 1e-9})
    assert pacer.poll_due(later)


@pytest.mark.parametrize(
    "asking",
    [
        Snapshot(now=10.5, woken=True),
        Snapshot(now=10.5, answers=25, listening=True),  # the failed round's, kept
        Snapshot(now=10.5, answers=3),
        Snapshot(now=10.5),
    ],
)
def test_after_a_failed_round_the_next_waits_whatever_asks_for_it(asking):
    """A round the database refused is not run again at once: its answers are kept, and
    retried at once, each failing round would ask for the next (a busy loop)."""
    pacer = pacer_after_a_round_at(10.0, listening=True)
    pacer.round_failed(10.0)
    assert not pacer.round_wanted(asking)
    assert not pacer.poll_due(asking)
    assert pacer.next_round_at(asking) == pytest.approx(10.0 + FAILED_ROUND_RETRY)
    assert pacer.timeout(asking) == pytest.approx(FAILED_ROUND_RETRY - 0.5)
    then = Snapshot(**{**_fields(asking), "now": 10.0 + FAILED_ROUND_RETRY})
    assert pacer.poll_due(then)
    assert pacer.round_wanted(then) is (asking.woken or asking.answers >= PACE.low_water)


def _fields(snapshot: Snapshot) -> dict:
    return {name: getattr(snapshot, name) for name in Snapshot.__slots__}


def test_a_retry_of_ours_is_polled_for_when_due_and_only_once():
    pacer = pacer_after_a_round_at(10.0, listening=True)
    pacer.retry_due(10.3)
    listening = Snapshot(now=10.0, listening=True)
    assert pacer.next_round_at(listening) == pytest.approx(10.3)
    pacer.round_started(Snapshot(now=10.3, listening=True))
    assert pacer.next_round_at(listening) == pytest.approx(10.3 + SAFETY_NET_POLL)


def test_a_probe_that_finds_nothing_puts_the_poll_off_like_an_empty_round():
    pacer = pacer_after_a_round_at(10.0, claimed=5, asked=5)
    pacer.nothing_to_do(Snapshot(now=10.02))
    assert pacer.next_round_at(Snapshot(now=10.02)) == pytest.approx(10.04)
    assert not pacer.round_wanted(Snapshot(now=10.02))  # no claim-again after it


@pytest.mark.parametrize(
    ("snapshot", "claim"),
    [
        (Snapshot(now=0.0, queued=0), 50),  # the queue's room
        (Snapshot(now=0.0, queued=24), 26),
        (Snapshot(now=0.0, queued=25), 0),  # at the low water mark: nothing...
        (Snapshot(now=0.0, queued=25, answers=1), 25),  # ...unless recording anyway
        (Snapshot(now=0.0, queued=43, answers=9), 0),  # and a full round fits
        # Rate-limited: no more than can be sent at once (no queue behind a slow one).
        (Snapshot(now=0.0, queued=0, free=8, rate_limited=True), 8),
        (Snapshot(now=0.0, queued=3, free=8, rate_limited=True), 5),
        (Snapshot(now=0.0, queued=0, free=0, rate_limited=True), 0),
        (Snapshot(now=0.0, queued=30, free=8, rate_limited=True), 0),
    ],
)
def test_how_much_a_round_claims(snapshot, claim):
    assert Pacer(PACE).claim_size(snapshot) == claim


@pytest.mark.parametrize(
    ("snapshot", "here"),
    [
        (Snapshot(now=0.0), True),  # nothing to send until it ends
        (Snapshot(now=0.0, in_flight=8, answers=3), True),  # answers can wait for it
        (Snapshot(now=0.0, queued=1, free=4), False),  # the loop sends meanwhile
        (Snapshot(now=0.0, queued=1, free=4, sends_resume_at=0.0), False),  # it may send now
        (Snapshot(now=0.0, queued=1, free=4, sends_resume_at=2.0), True),  # held back
        # No connection free for it: its answers keep coming (a drain), or not (slow).
        (Snapshot(now=10.0, queued=1, in_flight=8, moved_at=9.999), False),
        (Snapshot(now=10.0, queued=1, in_flight=8, moved_at=9.9), True),
    ],
)
def test_where_a_round_runs(snapshot, here):
    assert Pacer(PACE).round_here(snapshot) is here


@pytest.mark.parametrize(
    ("snapshot", "collect"),
    [
        (Snapshot(now=10.001, in_flight=2), False),  # a trickle: at the next wake-up
        (Snapshot(now=10.001, in_flight=2, queued=1), True),  # events wait for the handles
        (Snapshot(now=10.001, in_flight=6, answers=2), True),  # a full round's worth
        (Snapshot(now=10.02, in_flight=2), True),  # due to be recorded
        (Snapshot(now=10.001, in_flight=2, once=True), True),  # --once with nothing due
    ],
)
def test_when_answers_end_the_wait(snapshot, collect):
    assert pacer_after_a_round_at(10.0).collect_now(snapshot) is collect


@pytest.mark.parametrize(
    ("snapshot", "timeout"),
    [
        (Snapshot(now=10.0), 0.02),  # the poll
        (Snapshot(now=10.0, round_running=True), 60.0),  # the round's end wakes it
        (Snapshot(now=10.0, in_flight=2, listening=True), 0.02),  # collect by then
        # Requests ready, connections free, the rate limit says when.
        (Snapshot(now=10.0, queued=3, free=8, sends_resume_at=10.005, listening=True), 0.005),
        (Snapshot(now=10.0, queued=3, free=8, sends_resume_at=math.inf, paused=True), SLOW_POLL),
        (Snapshot(now=12.0), 0.0),  # overdue: no wait
        (Snapshot(now=10.0, woken=True, in_flight=4), 0.0),  # a round is wanted: no wait
        (Snapshot(now=10.0, woken=True, round_running=True), 60.0),  # one at a time
    ],
)
def test_how_long_the_loop_waits(snapshot, timeout):
    seen = {"listening": snapshot.listening, "paused": snapshot.paused}
    assert pacer_after_a_round_at(10.0, **seen).timeout(snapshot) == pytest.approx(timeout)


def test_a_steady_load_swaps_listening_for_polling_until_a_round_claims_nothing():
    pacer = pacer_after_a_round_at(9.0, listening=True)
    listening = Snapshot(now=9.0, listening=True)
    assert pacer.next_round_at(listening) == pytest.approx(9.0 + SAFETY_NET_POLL)
    for claimed in [3, 1, 2, 2, 2]:  # a round of one neither counts nor resets
        pacer.round_ended(claimed=claimed, asked=50, started=9.0)
    assert pacer.wants_wakeups(listening)
    pacer.round_ended(claimed=BUSY_CLAIM, asked=50, started=9.0)  # the fifth busy round
    assert BUSY_ROUNDS == 5
    assert not pacer.wants_wakeups(listening)
    assert pacer.next_round_at(listening) == pytest.approx(9.02)  # the poll's pace at once
    pacer.round_ended(claimed=1, asked=50, started=9.02)
    assert not pacer.wants_wakeups(listening)
    pacer.round_ended(claimed=0, asked=50, started=9.04)
    assert pacer.wants_wakeups(listening)


def test_a_backlog_stops_listening_until_the_queue_empties():
    pacer = Pacer(PACE)
    pacer.queue_seen(25)
    assert not pacer.wants_wakeups(Snapshot(now=0.0))
    pacer.queue_seen(3)  # hovering: still a backlog
    assert not pacer.wants_wakeups(Snapshot(now=0.0))
    pacer.queue_seen(0)
    assert pacer.wants_wakeups(Snapshot(now=0.0))
    assert not pacer.wants_wakeups(Snapshot(now=0.0, claims_resume_at=5.0))  # breaker open


def test_once_records_the_last_answers_at_once_whatever_the_last_claim_found():
    """A last claim that got fewer than it asked for: running on, its answers would wait
    for the poll (a trickle's); with --once, they are all that is left."""
    pacer = pacer_after_a_round_at(10.0, claimed=1, asked=4)
    assert not pacer.round_wanted(Snapshot(now=10.1, answers=3))
    assert pacer.round_wanted(Snapshot(now=10.1, answers=3, once=True))
    assert not pacer.round_wanted(Snapshot(now=10.1, answers=3, in_flight=1, once=True))


def test_once_finishes_when_nothing_was_found_and_nothing_is_left():
    pacer = pacer_after_a_round_at(10.0, claimed=0)
    assert pacer.finished(Snapshot(now=10.0))
    assert not pacer.finished(Snapshot(now=10.0, in_flight=1))
    assert not pacer.finished(Snapshot(now=10.0, round_running=True))
    assert not pacer.finished(Snapshot(now=10.0, woken=True))  # a round is asked for
    assert not pacer_after_a_round_at(10.0, claimed=2, asked=50).finished(Snapshot(now=10.0))


# -- a round to read the switches again (read_due) -------------------------------------
# After a round at 10.0 while listening, the next poll is the safety net's, at 20.0: only
# the read due at 11.0 (when the switches may be read again) comes before it.


def pacer_with_a_read_due_at(at: float) -> Pacer:
    pacer = pacer_after_a_round_at(10.0, listening=True)
    pacer.read_due(at)
    return pacer


@pytest.mark.parametrize(
    ("now", "wanted"),
    [
        (10.5, False),
        (10.999, False),
        (11.0, True),  # at its time...
        (15.0, True),  # ...or after
    ],
)
def test_a_read_due_wants_a_round_at_its_time_and_not_before(now, wanted):
    pacer = pacer_with_a_read_due_at(11.0)
    snapshot = Snapshot(now=now, listening=True)
    assert pacer.round_wanted(snapshot) is wanted
    assert pacer.poll_due(snapshot) is wanted
    assert pacer.timeout(snapshot) == pytest.approx(max(0.0, 11.0 - now))


@pytest.mark.parametrize(
    ("started", "next_round"),
    [
        (10.5, 11.0),  # a round before it: the read is still due
        (11.0, 11.0 + SAFETY_NET_POLL),  # at it: cleared, the safety net's poll next
        (12.5, 12.5 + SAFETY_NET_POLL),  # after it: cleared
    ],
)
def test_a_round_at_or_after_a_read_due_clears_it(started, next_round):
    pacer = pacer_with_a_read_due_at(11.0)
    pacer.round_started(Snapshot(now=started, listening=True))
    pacer.round_ended(claimed=0, asked=50, started=started)
    after = Snapshot(now=started + 0.001, listening=True)
    assert pacer.next_round_at(after) == pytest.approx(next_round)
    assert pacer.round_wanted(Snapshot(now=11.0, listening=True)) is (started < 11.0)


@pytest.mark.parametrize(
    ("seen", "snapshot"),
    [
        ({"listening": True}, Snapshot(now=10.0, listening=True)),  # the safety net at 20.0
        ({"paused": True}, Snapshot(now=10.0, paused=True)),  # the slow poll at 11.0
        ({}, Snapshot(now=10.0, queued=25)),  # the queue full: the slow poll
        ({}, Snapshot(now=10.0, answers=3, queued=25)),  # a full queue's trickle
        ({"claims_resume_at": 14.0}, Snapshot(now=10.0, claims_resume_at=14.0)),  # the breaker
    ],
)
@pytest.mark.parametrize("at", [10.01, 10.5, 10.999])
def test_the_next_round_is_never_later_than_a_read_due(seen, snapshot, at):
    pacer = pacer_after_a_round_at(10.0, **seen)
    pacer.read_due(at)
    assert pacer.next_round_at(snapshot) == pytest.approx(at)
    assert pacer.timeout(snapshot) == pytest.approx(at - 10.0)


def test_a_read_due_after_the_poll_leaves_the_poll_as_it_was():
    pacer = pacer_after_a_round_at(10.0)
    pacer.read_due(11.0)
    assert pacer.next_round_at(Snapshot(now=10.0)) == pytest.approx(10.02)


def test_a_later_read_due_supersedes_one_still_pending():
    """The switches were read between the two (the later time is a second after that read),
    so a round at the earlier time would find them not readable yet, and clear the read."""
    pacer = pacer_with_a_read_due_at(10.6)
    pacer.read_due(10.9)
    listening = Snapshot(now=10.0, listening=True)
    assert pacer.next_round_at(listening) == pytest.approx(10.9)
    assert not pacer.round_wanted(Snapshot(now=10.6, listening=True))
    assert pacer.round_wanted(Snapshot(now=10.9, listening=True))
    pacer.read_due(10.9)  # the same read again: no change
    assert pacer.next_round_at(listening) == pytest.approx(10.9)


@pytest.mark.parametrize(
    ("claimed", "asked", "cut_short", "found_nothing"),
    [
        (0, 50, False, True),  # looked, found none
        (3, 50, False, False),
        (0, 50, True, False),  # the rate limit's tokens ran out: more may be due
        (0, 0, True, False),  # the rate limit held the claim back: more may be due
        (0, 0, False, True),  # held back by the breaker or the pause: `--once` gives up
    ],
)
def test_what_a_round_learns_of_what_is_due(claimed, asked, cut_short, found_nothing):
    pacer = Pacer(PACE)
    pacer.round_started(Snapshot(now=1.0))
    pacer.round_ended(claimed=claimed, asked=asked, started=1.0, cut_short=cut_short)
    assert pacer.found_nothing is found_nothing
    assert pacer.finished(Snapshot(now=1.1)) is found_nothing


def test_nothing_to_do_while_a_rate_limit_holds_claims_learns_nothing():
    pacer = Pacer(PACE)
    pacer.nothing_to_do(Snapshot(now=1.0), looked=False)
    assert not pacer.finished(Snapshot(now=1.0))
    pacer.nothing_to_do(Snapshot(now=1.0))  # the probe looked
    assert pacer.finished(Snapshot(now=1.0))


def test_once_finishes_while_paused_with_nothing_left_to_send_or_record():
    pacer = Pacer(PACE)
    assert pacer.finished(Snapshot(now=1.0, paused=True))
    assert not pacer.finished(Snapshot(now=1.0, paused=True, in_flight=1))
