"""API throttling per user (API_THROTTLE_RATE, default 100/second); health endpoints exempt."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.throttling import SimpleRateThrottle

from tests.security.conftest import basic

ROOT = Path(__file__).resolve().parent.parent.parent
RATE = 5


@pytest.fixture
def low_rate(monkeypatch):
    """A low rate for this test (DRF reads the rates once, into the throttle classes)."""
    rates = {"user": f"{RATE}/minute", "anon": f"{RATE}/minute"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)


def _rate_in_production_settings(env: dict) -> str:
    code = (
        "import django; django.setup(); "
        "from rest_framework.throttling import UserRateThrottle, AnonRateThrottle; "
        "print(UserRateThrottle().rate, AnonRateThrottle().rate)"
    )
    clean = {k: v for k, v in os.environ.items() if k != "API_THROTTLE_RATE"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "railfleet.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.split()


@pytest.mark.subprocess
def test_rate_defaults_to_100_per_second_and_reads_the_environment():
    assert _rate_in_production_settings({}) == ["100/second", "100/second"]
    assert _rate_in_production_settings({"API_THROTTLE_RATE": "7/minute"}) == [
        "7/minute",
        "7/minute",
    ]


@pytest.mark.django_db
def test_user_is_throttled_with_429_and_retry_after(client, user, other_user, low_rate):
    for _ in range(RATE):
        assert client.get("/api/defects", **basic("alice", "alice-password")).status_code == 200
    response = client.get("/api/defects", **basic("alice", "alice-password"))
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert "throttled" in response.json()["detail"].lower()
    assert 0 < int(response["Retry-After"]) <= 60
    # Writes count too.
    post = client.post("/api/defects", {"comment": "x"}, **basic("alice", "alice-password"))
    assert post.status_code == 429
    # The limit is per user: bob is served.
    assert client.get("/api/defects", **basic("bob", "bob-password")).status_code == 200


@pytest.mark.django_db
def test_the_limit_follows_the_user_across_credentials(client, user, token, low_rate):
    for _ in range(RATE):
        assert client.get("/api/defects", **basic("alice", "alice-password")).status_code == 200
    response = client.get("/api/defects", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 429


@pytest.mark.django_db
def test_health_endpoints_are_not_throttled(client, user, low_rate):
    for _ in range(RATE):
        client.get("/api/defects", **basic("alice", "alice-password"))
    assert client.get("/api/defects", **basic("alice", "alice-password")).status_code == 429
    for _ in range(RATE * 10):
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
