"""Fixtures of the defect API tests: clients authenticated as the test users."""

import pytest
from django.apps import apps
from django.core.cache import cache
from django.db.models.deletion import Collector
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
    """`user` (alice) with her API token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def reset_rate_limits() -> None:
    """Forget the API throttle's counts and any login lockout, for tests that make many
    requests in a row (the fuzzer also sends wrong credentials on purpose)."""
    cache.clear()
    if apps.is_installed("axes"):
        from axes.utils import reset

        reset()


@pytest.fixture
def deleted_meanwhile(monkeypatch):
    """`deleted_meanwhile(defect)`: another deleter takes `defect` first, at the worst moment.

    `defect` (an instance of its own, read before) is deleted, as a service call
    would, right before the next delete collector opens its transaction: after
    that delete has read what it deletes, before it deletes. This is the
    interleaving of two deleters that both collected the same defect, made
    exact on one connection (the PostgreSQL tests also run it on two).
    """
    pending: list = []
    real_delete = Collector.delete

    def delete_after_the_others(self):
        while pending:
            pending.pop().delete()  # its own collector finds `pending` empty
        return real_delete(self)

    monkeypatch.setattr(Collector, "delete", delete_after_the_others)
    return pending.append
