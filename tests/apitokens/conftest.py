"""Helpers of the API token tests: a clock the tests move, requests with a token, and a
search of the whole database."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
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


def every_value_in_the_database():
    """(table, value as text) for every column of every row of every table."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode(errors="replace")
                    yield table, str(value)
