import datetime
from email.utils import format_datetime

import pytest
from django.utils import timezone

from broadcast.retry import parse_retry_after, retry_delay


def no_jitter():
    return 0.5  # the middle of the jitter range: exactly the backoff


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 256.0), (10, 300.0), (50, 300.0), (5000, 300.0)],
)
def test_backoff_doubles_from_one_second_up_to_the_cap(attempts, expected):
    assert retry_delay(attempts, base=1.0, cap=300.0, rand=no_jitter) == pytest.approx(expected)


def test_jitter_stays_within_twenty_percent():
    assert retry_delay(3, base=1.0, cap=300.0, rand=lambda: 0.0) == pytest.approx(3.2)
    assert retry_delay(3, base=1.0, cap=300.0, rand=lambda: 0.999999) == pytest.approx(4.8)


def test_jitter_never_exceeds_the_cap():
    assert retry_delay(20, base=1.0, cap=300.0, rand=lambda: 0.999999) == pytest.approx(300.0)


def test_retry_after_is_honoured_when_longer_than_backoff():
    assert retry_delay(1, base=1.0, cap=300.0, retry_after=30.0, rand=no_jitter) == 30.0
    assert retry_delay(5, base=1.0, cap=300.0, retry_after=2.0, rand=no_jitter) == 16.0


def test_parse_retry_after_seconds_and_dates():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = timezone.now() + datetime.timedelta(seconds=90)
    assert parse_retry_after(format_datetime(later, usegmt=True)) == pytest.approx(90, abs=2)
    earlier = timezone.now() - datetime.timedelta(seconds=90)
    assert parse_retry_after(format_datetime(earlier, usegmt=True)) == 0.0
