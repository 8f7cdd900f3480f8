"""/api/tokens: create with the password or the session, list and revoke one's own."""

from datetime import timedelta

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from apitokens.models import ApiToken
from apitokens.services import token_create
from tests.apitokens.conftest import get_with
from tests.helpers import basic_auth

pytestmark = pytest.mark.django_db

LISTED = {"id", "name", "prefix", "created", "last_used", "expires"}


@pytest.fixture
def alice(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth("alice", "alice-password"))
    return client


def create(client, body, path="/api/tokens"):
    return client.post(path, body, format="json")


@pytest.mark.parametrize("path", ["/api/tokens", "/api/tokens/"])
def test_create_answers_201_with_the_text_once(alice, user, clock, path):
    response = create(alice, {"name": "CI pipeline", "expires_days": 30}, path)

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == LISTED | {"token"}
    assert body["name"] == "CI pipeline"
    assert body["token"].startswith(body["prefix"]) and body["prefix"].startswith("rft_")
    assert body["last_used"] is None
    token = ApiToken.objects.get(pk=body["id"])
    assert (token.user, token.created, token.expires) == (
        user,
        clock.time,
        clock.time + timedelta(days=30),
    )
    assert get_with(body["token"]).status_code == 200
    # Never again: the listing has no text.
    assert "token" not in alice.get("/api/tokens").json()[0]


def test_the_expiry_is_90_days_unless_given(alice, clock):
    body = create(alice, {"name": "default"}).json()

    assert ApiToken.objects.get(pk=body["id"]).expires == clock.time + timedelta(days=90)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "expires_days": 0}, "expires_days"),
        ({"name": "ok", "expires_days": 366}, "expires_days"),
        ({"name": "ok", "expires_days": None}, "expires_days"),
        ({"name": "ok", "expires_days": "soon"}, "expires_days"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(alice, body, field):
    response = create(alice, body)

    assert response.status_code == 400
    assert set(response.json()) == {field}
    assert not ApiToken.objects.exists()


def test_malformed_json_and_other_content_types_are_refused_as_by_the_defects_api(alice):
    malformed = alice.post("/api/tokens", "{", content_type="application/json")
    form = alice.post("/api/tokens", {"name": "x"})  # multipart

    assert (malformed.status_code, set(malformed.json())) == (400, {"detail"})
    assert (form.status_code, set(form.json())) == (415, {"detail"})


def test_a_body_over_the_limit_is_a_413(alice):
    body = '{"name": "' + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + '"}'
    response = alice.post("/api/tokens", body, content_type="application/json")

    assert response.status_code == 413
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("keyword", ["Token", "Bearer"])
def test_a_token_cannot_create_tokens(token, keyword):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token}")

    response = create(client, {"name": "successor"})

    assert response.status_code == 403
    assert "password" in response.json()["detail"]
    assert ApiToken.objects.count() == 1


def test_the_admin_session_creates_a_token_with_the_csrf_token(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert create(client, {"name": "no csrf"}).status_code == 403

    client.get("/admin/login/")  # sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    response = client.post("/api/tokens", {"name": "session"}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 201


def test_without_credentials_it_is_a_401(api_client, db):
    for response in (api_client.get("/api/tokens"), create(api_client, {"name": "x"})):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Basic realm="api"'


@pytest.mark.parametrize("path", ["/api/tokens", "/api/tokens/"])
def test_the_list_holds_only_the_callers_tokens_and_never_text_or_hash(
    alice, user, other_user, path
):
    mine, _ = token_create(user=user, name="mine")
    token_create(user=other_user, name="bob's")

    response = alice.get(path)

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": mine.pk,
            "name": "mine",
            "prefix": mine.prefix,
            "created": mine.created.isoformat().replace("+00:00", "Z"),
            "last_used": None,
            "expires": mine.expires.isoformat().replace("+00:00", "Z"),
        }
    ]


def test_a_token_lists_its_owners_tokens(user, token):
    response = get_with(token, path="/api/tokens")

    assert [t["name"] for t in response.json()] == ["tests"]


@pytest.mark.parametrize("slash", ["", "/"])
def test_revoking_ones_own_token_takes_effect_on_the_next_request(alice, user, slash):
    token, text = token_create(user=user, name="leaked")
    assert get_with(text).status_code == 200

    assert alice.delete(f"/api/tokens/{token.pk}{slash}").status_code == 204

    assert get_with(text).status_code == 401
    assert alice.get("/api/tokens").json() == []


def test_a_token_may_revoke_itself(user, token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    token_id = ApiToken.objects.get().pk

    assert client.delete(f"/api/tokens/{token_id}").status_code == 204
    assert client.get("/api/defects").status_code == 401


def test_another_users_token_is_a_404_and_keeps_working(alice, other_user):
    bobs, text = token_create(user=other_user, name="bob's")

    response = alice.delete(f"/api/tokens/{bobs.pk}")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}
    assert get_with(text).status_code == 200


@pytest.mark.parametrize("token_id", ["999999", "abc", "99999999999999999999999"])
def test_an_unknown_id_is_a_json_404(alice, token_id):
    response = alice.delete(f"/api/tokens/{token_id}")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_other_methods_are_405(alice, user):
    token, _ = token_create(user=user, name="x")

    assert alice.put("/api/tokens", {}, format="json").status_code == 405
    assert alice.get(f"/api/tokens/{token.pk}").status_code == 405
    assert alice.patch(f"/api/tokens/{token.pk}", {}, format="json").status_code == 405
