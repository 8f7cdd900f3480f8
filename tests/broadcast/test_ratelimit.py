"""The token bucket, driven by an injected clock: exact, no sleeping; and the bucket every
dispatcher shares in the database, driven by the dispatchers' injected clock."""

import datetime
import random

import pytest

from broadcast.destinations import destination_create
from broadcast.models import RateBucket
from broadcast.ratelimit import BURST_SECONDS, TokenBucket, take_tokens


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0


@pytest.fixture
def clock():
    return Clock()


@pytest.mark.parametrize("rate", [0, 0.0, None])
def test_zero_or_none_is_unlimited(rate, clock):
    bucket = TokenBucket(rate)
    assert not bucket.limited
    assert bucket.grant(1_000_000, clock.now) == 1_000_000
    assert bucket.wait(clock.now) == 0.0


def test_a_negative_rate_is_refused():
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(-1)


def test_starts_with_a_twentieth_of_a_second_worth(clock):
    bucket = TokenBucket(200)
    assert bucket.capacity == 200 * BURST_SECONDS == 10
    assert bucket.grant(50, clock.now) == 10
    assert bucket.grant(50, clock.now) == 0


def test_a_slow_rate_still_holds_one_whole_token(clock):
    bucket = TokenBucket(0.5)
    assert bucket.grant(3, clock.now) == 1
    assert bucket.wait(clock.now) == pytest.approx(2.0)
    clock.now += 1.999
    assert bucket.grant(1, clock.now) == 0
    clock.now += 0.001
    assert bucket.grant(1, clock.now) == 1


def test_tokens_come_back_at_the_rate(clock):
    bucket = TokenBucket(100)
    bucket.grant(5, clock.now)
    assert bucket.wait(clock.now) == pytest.approx(0.01)
    clock.now += 0.03
    assert bucket.grant(10, clock.now) == 3
    clock.now += 0.005
    assert bucket.grant(10, clock.now) == 0
    assert bucket.wait(clock.now) == pytest.approx(0.005)


def test_a_long_idle_spell_does_not_bank_more_than_the_burst(clock):
    bucket = TokenBucket(100)
    bucket.grant(5, clock.now)
    clock.now += 3600
    assert bucket.grant(1000, clock.now) == 5
    assert bucket.wait(clock.now) == pytest.approx(0.01)


def test_wait_is_zero_while_a_token_is_there(clock):
    bucket = TokenBucket(10)
    assert bucket.wait(clock.now) == 0.0
    assert bucket.grant(0, clock.now) == 0 and bucket.grant(-3, clock.now) == 0
    assert bucket.wait(clock.now) == 0.0


def test_a_clock_that_goes_back_adds_nothing(clock):
    bucket = TokenBucket(10)
    bucket.grant(1, clock.now)
    clock.now -= 100
    assert bucket.grant(1, clock.now) == 0
    assert bucket.wait(clock.now) == pytest.approx(100.1)  # back past where it was, then 0.1 s


def _greedy_dispatcher(rate: float, seconds: float, seed: int, *, prompt: bool) -> list[float]:
    """Grant times of a dispatcher that always wants more.

    A prompt one comes back when wait() says, or a little later; another's rounds
    also come at random, sooner or much later than that.
    """
    rng = random.Random(seed)
    clock = Clock()
    bucket = TokenBucket(rate)
    start, times = clock.now, []
    while clock.now - start < seconds:
        times += [clock.now] * bucket.grant(rng.randint(1, 500), clock.now)
        late = rng.uniform(0, 0.002)
        choices = [bucket.wait(clock.now) + late] if prompt else [late, rng.uniform(0, 0.2)]
        clock.now += rng.choice(choices)
    return times


def _most_in_any_window(times: list[float], width: float) -> int:
    most, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= width:
            first += 1
        most = max(most, last - first + 1)
    return most


RATES = [(1000, 1), (200, 2), (37.5, 3), (5, 4), (1, 5)]


@pytest.mark.parametrize(("rate", "seed"), RATES)
@pytest.mark.parametrize("prompt", [True, False])
def test_over_any_one_second_window_at_most_the_rate_plus_the_burst(rate, seed, prompt):
    times = _greedy_dispatcher(rate, seconds=30, seed=seed, prompt=prompt)

    bound = max(1.0, rate * BURST_SECONDS) + rate  # capacity + rate x 1 s
    assert _most_in_any_window(times, 1.0) <= bound
    assert bound <= max(rate * 1.05, rate + 1)


@pytest.mark.parametrize(("rate", "seed"), RATES)
def test_a_dispatcher_that_follows_wait_gets_the_whole_rate(rate, seed):
    times = _greedy_dispatcher(rate, seconds=30, seed=seed, prompt=True)
    assert rate * 30 * 0.98 <= len(times) <= rate * 30 + max(1.0, rate * BURST_SECONDS)


# --- The bucket every dispatcher shares, in the database ------------------------------

T0 = datetime.datetime(2026, 12, 7, 8, 0, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


@pytest.fixture
def limited(db):
    return destination_create(name="limited", url="http://127.0.0.1:9/", max_rate=100)[0]


def test_a_new_bucket_starts_full_then_grants_as_time_passes(limited):
    # 100 per second: a capacity of 5 tokens (a twentieth of a second's worth).
    assert take_tokens(destination=limited.pk, rate=100, wanted=50, now=at(0)) == (5, 0.01)
    assert take_tokens(destination=limited.pk, rate=100, wanted=50, now=at(0)) == (0, 0.01)
    granted, wait = take_tokens(destination=limited.pk, rate=100, wanted=50, now=at(0.03))
    assert (granted, wait) == (3, pytest.approx(0.01))
    assert RateBucket.objects.get(destination=limited).updated_at == at(0.03)


def test_dispatchers_taking_in_turn_share_one_rate(limited):
    """Two dispatchers taking every 10 ms for a second get the rate plus the capacity, together."""
    granted = {"A": 0, "B": 0}
    for step in range(101):
        owner = "A" if step % 2 else "B"
        granted[owner] += take_tokens(destination=limited.pk, rate=100, wanted=500,
                                      now=at(step * 0.01))[0]  # fmt: skip
    assert sum(granted.values()) == 100 + 5
    assert granted["A"] > 0 and granted["B"] > 0


def test_a_clock_behind_the_last_take_adds_nothing_and_moves_nothing_back(limited):
    take_tokens(destination=limited.pk, rate=100, wanted=5, now=at(1))
    assert take_tokens(destination=limited.pk, rate=100, wanted=5, now=at(0.5))[0] == 0
    assert RateBucket.objects.get(destination=limited).updated_at == at(1)
    assert take_tokens(destination=limited.pk, rate=100, wanted=5, now=at(1.01))[0] == 1


def test_a_slower_rate_set_since_caps_what_was_saved(limited):
    take_tokens(destination=limited.pk, rate=1000, wanted=0, now=at(0))  # 50 saved
    assert take_tokens(destination=limited.pk, rate=20, wanted=100, now=at(0))[0] == 1
