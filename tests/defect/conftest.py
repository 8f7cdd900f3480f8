"""Fixtures of the defect API tests: clients authenticated as the test users."""

import pytest
from django.apps import apps
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.helpers import basic_auth


@pytest.fixture
def alice_client(user):
    """`user` (alice) over HTTP Basic, as a script would call the API."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth("alice", "alice-password"))
    return client


@pytest.fixture
def bob_client(other_user):
    """`other_user` (bob) over HTTP Basic."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth("bob", "bob-password"))
    return client


@pytest.fixture
def token_client(token):
    """`user` (alice) with her DRF token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def reset_rate_limits() -> None:
    """Forget the API throttle's counts and any login lockout, for tests that make many
    requests in a row (the fuzzer also sends wrong credentials on purpose)."""
    cache.clear()
    if apps.is_installed("axes"):
        from axes.utils import reset

        reset()
