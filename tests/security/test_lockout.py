"""Repeated failed logins lock the username out (django-axes), in the admin and the API."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model

from tests.security.conftest import basic

pytestmark = pytest.mark.django_db

LIMIT = settings.AXES_FAILURE_LIMIT
LOGIN_URL = "/admin/login/?next=/admin/"


@pytest.fixture
def victim(db):
    return get_user_model().objects.create_user("dave", password="dave-password", is_staff=True)


def admin_login(client, username: str, password: str):
    return client.post(LOGIN_URL, {"username": username, "password": password})


def test_limit_is_ten_failures_within_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 10
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username"]


def test_admin_login_locks_out_after_ten_failures(client, victim, staff_user):
    for _ in range(LIMIT - 1):
        response = admin_login(client, "dave", "wrong")
        assert response.status_code == 200  # the login form again, with its error
    # The tenth failure locks the username.
    assert admin_login(client, "dave", "wrong").status_code == 429
    # Now even the right password is refused, with a clear message.
    response = admin_login(client, "dave", "dave-password")
    assert response.status_code == 429
    assert "Too many failed login attempts" in response.content.decode()
    assert int(response["Retry-After"]) == 15 * 60
    assert "_auth_user_id" not in client.session
    # Another user logs in as usual, from the same client.
    response = admin_login(client, "carol", "carol-password")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff_user.pk)


def test_fewer_failures_do_not_lock_and_success_resets(client, victim):
    for _ in range(LIMIT - 1):
        admin_login(client, "dave", "wrong")
    assert admin_login(client, "dave", "dave-password").status_code == 302
    assert not AccessAttempt.objects.filter(username="dave").exists()


def test_api_basic_auth_locks_out_after_ten_failures(client, user, other_user):
    statuses = [
        client.get("/api/defects", **basic("alice", "wrong")).status_code for _ in range(LIMIT)
    ]
    assert statuses == [401] * LIMIT
    response = client.get("/api/defects", **basic("alice", "alice-password"))
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert "Too many failed login attempts" in response.json()["detail"]
    assert response.json()["code"] == "locked_out"
    assert "Retry-After" in response
    # Bob is not affected.
    assert client.get("/api/defects", **basic("bob", "bob-password")).status_code == 200


def test_api_and_admin_share_the_count(client, victim):
    for _ in range(LIMIT // 2):
        client.get("/api/defects", **basic("dave", "wrong"))
    for _ in range(LIMIT - LIMIT // 2):
        admin_login(client, "dave", "wrong")
    assert client.get("/api/defects", **basic("dave", "dave-password")).status_code == 429
    assert admin_login(client, "dave", "dave-password").status_code == 429
