"""POST /api/tokens takes the password, so it counts failed logins as the admin does."""

import pytest
from django.conf import settings

from apitokens.models import ApiToken
from tests.security.conftest import basic

pytestmark = pytest.mark.django_db


def post(client, username: str, password: str):
    return client.post(
        "/api/tokens",
        {"name": "guess"},
        content_type="application/json",
        **basic(username, password),
    )


def test_failed_logins_on_post_lock_the_username_out(client, user, other_user):
    statuses = [
        post(client, "alice", "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses == [401] * settings.AXES_FAILURE_LIMIT

    response = post(client, "alice", "alice-password")  # the right password, too late

    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"
    assert int(response["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    assert not ApiToken.objects.filter(user=user).exists()
    assert post(client, "bob", "bob-password").status_code == 201


def test_failures_on_the_admin_login_count_too(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})

    assert post(client, "alice", "alice-password").status_code == 429
