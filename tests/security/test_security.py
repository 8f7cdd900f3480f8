"""Security: CSRF on session writes, ownership by every route, nothing for anonymous
callers, no secrets in responses or logs. (Lockout and throttling: the sibling files.)"""

import json
import logging
import re
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from defect.models import Defect
from defect.services import defect_create
from tests.security.conftest import basic

pytestmark = pytest.mark.django_db

SECRET_COMMENT = "Bogie crack, vehicle 4711-private"
PASSWORD = "Correct-Horse-Battery-Staple-42"


@pytest.fixture
def alice_defect(user):
    return defect_create(user=user, comment=SECRET_COMMENT)


def _snapshot() -> list[tuple]:
    return list(Defect.objects.order_by("id").values_list("id", "comment", "user"))


# --- CSRF on session-authenticated writes --------------------------------------------


@pytest.fixture
def session_client(user):
    """Alice logged in with a session, CSRF checks enforced as in a browser."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _csrf_token(client: Client) -> str:
    client.get("/api/auth/login/")  # renders a form: sets the CSRF cookie
    return client.cookies[settings.CSRF_COOKIE_NAME].value


def _writes(defect: Defect) -> list[tuple[str, str, dict | None]]:
    return [
        ("post", "/api/defects", {"comment": "New"}),
        ("put", f"/api/defects/{defect.pk}", {"comment": "Replaced"}),
        ("patch", f"/api/defects/{defect.pk}", {"comment": "Patched"}),
        ("delete", f"/api/defects/{defect.pk}", None),
    ]


def test_session_writes_without_csrf_token_are_refused(session_client, alice_defect):
    before = _snapshot()
    for method, url, body in _writes(alice_defect):
        response = getattr(session_client, method)(
            url, json.dumps(body) if body else "", content_type="application/json"
        )
        assert response.status_code == 403, (method, url)
        assert "CSRF" in response.json()["detail"]
    assert _snapshot() == before


def test_session_writes_with_csrf_token_pass(session_client, alice_defect):
    token = _csrf_token(session_client)
    statuses = [
        getattr(session_client, method)(
            url,
            json.dumps(body) if body else "",
            content_type="application/json",
            HTTP_X_CSRFTOKEN=token,
        ).status_code
        for method, url, body in _writes(alice_defect)
    ]
    assert statuses == [201, 200, 200, 204]


def test_session_reads_need_no_csrf_token(session_client, alice_defect):
    assert session_client.get("/api/defects").status_code == 200


def test_admin_form_posts_need_csrf_token(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = client.post(
        "/admin/defect/defect/add/",
        {"comment": "Forged", "timestamp_0": "2024-05-01", "timestamp_1": "08:30:00"},
    )
    assert response.status_code == 403
    assert not Defect.objects.exists()


def test_token_and_basic_writes_need_no_csrf(user, token):
    """Credentials a browser never sends on its own cannot be forged cross-site."""
    client = Client(enforce_csrf_checks=True)
    credentials = {
        "Basic": basic("alice", "alice-password"),
        "Token": {"HTTP_AUTHORIZATION": f"Token {token}"},
    }
    statuses = {
        scheme: client.post(
            "/api/defects", {"comment": f"Via {scheme}"}, content_type="application/json", **auth
        ).status_code
        for scheme, auth in credentials.items()
    }
    assert statuses == {"Basic": 201, "Token": 201}
    assert sorted(Defect.objects.values_list("comment", flat=True)) == ["Via Basic", "Via Token"]


# --- Nobody deletes or reassigns another user's defect --------------------------------


def _encode(data: dict, content_type: str) -> str:
    if content_type == "application/json":
        return json.dumps(data)
    return urlencode(data)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_api_cannot_reassign_or_delete_others_defect(
    client, alice_defect, user, other_user, content_type
):
    bob = basic("bob", "bob-password")
    url = f"/api/defects/{alice_defect.pk}"
    for method, data in [
        ("put", {"comment": "Edited by bob", "user": other_user.pk, "username": "bob"}),
        ("patch", {"user": other_user.pk}),
    ]:
        response = getattr(client, method)(
            url, _encode(data, content_type), content_type=content_type, **bob
        )
        # JSON is accepted with the creator kept; a form is a format the API does not take.
        if content_type == "application/json":
            assert response.status_code == 200
            assert response.json()["user"] == user.pk
        else:
            assert response.status_code == 415
    assert client.delete(url, **bob).status_code == 403
    alice_defect.refresh_from_db()
    assert alice_defect.user == user


def test_api_create_ignores_a_posted_user(client, user, other_user):
    for data, content_type in [
        (json.dumps({"comment": "Mine", "user": user.pk}), "application/json"),
        (f"comment=Mine&user={user.pk}&username=alice", "application/x-www-form-urlencoded"),
    ]:
        response = client.post(
            "/api/defects", data, content_type=content_type, **basic("bob", "bob-password")
        )
        if content_type == "application/json":
            assert response.status_code == 201
            assert response.json()["user"] == other_user.pk
        else:
            assert response.status_code == 415
    assert Defect.objects.count() == 1
    assert set(Defect.objects.values_list("user", flat=True)) == {other_user.pk}


def test_method_override_does_not_turn_a_post_into_a_delete(client, alice_defect, other_user):
    bob = basic("bob", "bob-password")
    url = f"/api/defects/{alice_defect.pk}"
    for response in (
        client.post(url, {"_method": "DELETE"}, **bob),
        client.post(
            url, "{}", content_type="application/json", HTTP_X_HTTP_METHOD_OVERRIDE="DELETE", **bob
        ),
    ):
        assert response.status_code == 405  # a detail route takes no POST, whatever it carries
    assert Defect.objects.filter(pk=alice_defect.pk).exists()


def test_admin_refuses_users_who_are_not_staff(client, other_user, alice_defect):
    client.force_login(other_user)
    for url, data in [
        (f"/admin/defect/defect/{alice_defect.pk}/delete/", {"post": "yes"}),
        (
            f"/admin/defect/defect/{alice_defect.pk}/change/",
            {"comment": "x", "user": other_user.pk},
        ),
        (
            "/admin/defect/defect/",
            {"action": "delete_selected", "_selected_action": [alice_defect.pk], "post": "yes"},
        ),
    ]:
        response = client.post(url, data)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    assert _snapshot() == [(alice_defect.pk, SECRET_COMMENT, alice_defect.user_id)]


def test_staff_without_change_permission_cannot_edit(client, alice_defect):
    staff = get_user_model().objects.create_user("erin", password="erin-password", is_staff=True)
    client.force_login(staff)
    response = client.post(
        f"/admin/defect/defect/{alice_defect.pk}/change/",
        {"comment": "x", "timestamp_0": "2024-05-01", "timestamp_1": "08:30:00"},
    )
    assert response.status_code == 403
    assert _snapshot() == [(alice_defect.pk, SECRET_COMMENT, alice_defect.user_id)]


# --- Nothing about users for anonymous callers -----------------------------------------

# Every route outside the admin; a new one fails this test until it is reviewed here.
PUBLIC = {"home", "health", "ready", "api-schema", "api-docs", "login"}
# metrics: Bearer METRICS_TOKEN, or debug mode only (a 404 here, debug off, no token).
PROTECTED = {
    "defect-list",
    "defect-detail",
    "token-list",
    "token-detail",
    # Staff only (tests/broadcast/test_destinations_api.py).
    "destination-list",
    "destination-detail",
    "destination-rotate-secret",
    # Staff only (tests/broadcast/test_deliveries_api.py).
    "destination-deliveries",
    "destination-attempts",
    "destination-delivery-resend",
    "destination-replay",
    "logout",
    "metrics",
    None,
}


def _routes(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.name


def _concrete(route: str, pk: int) -> str:
    """A URL matching `route`, with `pk` for every parameter."""
    # A regex group of alternatives (the admin's app labels): the first; any other: pk.
    route = re.sub(r"\(\?P<\w+>(\w+)(\|[\w|]+)?\)", r"\1", route)
    route = re.sub(r"\(\?P<\w+>[^)]*\)", str(pk), route)
    route = re.sub(r"<(?:\w+:)?\w+>", str(pk), route)  # path() converters
    return "/" + route.replace("^", "").replace("$", "").replace("/?", "")


def test_every_route_is_classified():
    names = {
        name
        for route, name in _routes(get_resolver().url_patterns)
        if not route.startswith("admin/")
    }
    assert names == PUBLIC | PROTECTED


def _assert_reveals_nothing(response, user) -> None:
    body = response.content.decode(errors="replace")
    for secret in (SECRET_COMMENT, user.username, user.email or "@", "4711"):
        assert secret not in body, (response.request["PATH_INFO"], secret)


def test_anonymous_callers_get_no_users_data(client, user, alice_defect):
    user.email = "alice@railfleet.example"
    user.save()
    for route, name in _routes(get_resolver().url_patterns):
        url = _concrete(route, alice_defect.pk)
        response = client.get(url)
        _assert_reveals_nothing(response, user)
        assert response.status_code == _anonymous_status(route, name), url
        if response.status_code == 302:
            login = "/admin/" if url == "/admin/logout/" else f"/admin/login/?next={url}"
            assert response["Location"] == login


def _anonymous_status(route: str, name: str | None) -> int:
    """What an anonymous GET of `route` answers: the admin sends to its login page."""
    if route.startswith("admin/"):
        return 200 if route == "admin/login/" else 302
    if name in PUBLIC:
        return 200
    # The API's logout takes POST only; the unnamed route is /api/'s JSON 404;
    # /metrics without METRICS_TOKEN does not exist when debug is off.
    return {"logout": 405, None: 404, "metrics": 404}.get(name, 401)


@pytest.mark.parametrize("accept", ["application/json", "*/*", "text/html"])
def test_anonymous_api_list_reveals_nothing(client, alice_defect, user, accept):
    """JSON and any-type clients get the 401; a browser is sent to the login page."""
    response = client.get("/api/defects", HTTP_ACCEPT=accept)
    assert response.status_code == (302 if accept == "text/html" else 401)
    _assert_reveals_nothing(response, user)


# --- No secrets in responses or logs ----------------------------------------------------


@pytest.fixture
def all_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def test_failed_logins_never_echo_or_log_the_password(client, user, all_logs):
    responses = [
        client.get("/api/defects", **basic("alice", PASSWORD)),
        client.post("/admin/login/", {"username": "alice", "password": PASSWORD}),
        client.post("/api/auth/login/", {"username": "alice", "password": PASSWORD}),
    ]
    for response in responses:
        assert PASSWORD not in response.content.decode()
    assert PASSWORD not in all_logs.text


def test_tokens_and_credentials_never_appear_in_logs(client, user, token, all_logs):
    client.get("/api/defects", HTTP_AUTHORIZATION=f"Token {token}")
    client.get("/api/defects", HTTP_AUTHORIZATION="Token not-a-real-token-123456")
    client.get("/api/defects", **basic("alice", "alice-password"))
    text = all_logs.text
    assert token not in text
    assert "not-a-real-token-123456" not in text
    assert "alice-password" not in text


def test_server_errors_reveal_nothing(monkeypatch, user, all_logs):
    """An unexpected exception: a bare 500, in JSON under /api/, plain elsewhere."""

    def explode(*args, **kwargs):
        raise RuntimeError("internal detail: /srv/railfleet/secret.conf")

    monkeypatch.setattr("defect.api.views.DefectSerializer.create", explode)
    monkeypatch.setattr("defect.admin.DefectAdmin.save_model", explode)
    client = Client(raise_request_exception=False)
    api = client.post(
        "/api/defects",
        {"comment": "x"},
        content_type="application/json",
        **basic("alice", "alice-password"),
    )
    assert api.status_code == 500
    assert api.json() == {"detail": "Internal server error."}
    staff = get_user_model().objects.create_superuser("root", "r@example.com", "root-password")
    client.force_login(staff)
    admin = client.post(
        "/admin/defect/defect/add/",
        {"comment": "x", "timestamp_0": "2024-05-01", "timestamp_1": "08:30:00"},
    )
    assert admin.status_code == 500
    for response in (api, admin):
        body = response.content.decode()
        assert "secret.conf" not in body
        assert "Traceback" not in body
        assert settings.SECRET_KEY not in body
    assert settings.SECRET_KEY not in all_logs.text
