"""Helpers of the API token tests: a clock the tests move, and requests with a token."""

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """apitokens.clock.now, replaced: the time stands still until a test moves it."""

    def __init__(self, start: datetime) -> None:
        self.time = start

    def __call__(self) -> datetime:
        return self.time

    def advance(self, **delta: float) -> None:
        self.time += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock(START)
    monkeypatch.setattr("apitokens.clock.now", fake)
    return fake


def get_with(token_text: str, keyword: str = "Token", path: str = "/api/defects"):
    """GET `path` with `Authorization: <keyword> <token_text>`."""
    return APIClient().get(path, HTTP_AUTHORIZATION=f"{keyword} {token_text}")
