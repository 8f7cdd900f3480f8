"""Who may do what: (anonymous, creator, another user) x every operation."""

import pytest
from rest_framework.test import APIClient

from defect.models import Defect
from defect.services import defect_create
from tests.helpers import basic_auth

pytestmark = pytest.mark.django_db

NEW_TIME = "2026-11-28T09:15:00Z"

# operation -> (method, path, body); {id} is the creator's defect.
OPERATIONS = {
    "list": ("get", "/api/defects", None),
    "retrieve": ("get", "/api/defects/{id}", None),
    "create": ("post", "/api/defects", {"comment": "Horn silent"}),
    "update": ("put", "/api/defects/{id}", {"comment": "Replaced", "timestamp": NEW_TIME}),
    "partial_update": ("patch", "/api/defects/{id}", {"comment": "Patched"}),
    "delete": ("delete", "/api/defects/{id}", None),
}

EXPECTED = {
    "anonymous": dict.fromkeys(OPERATIONS, 401),
    "creator": {
        "list": 200,
        "retrieve": 200,
        "create": 201,
        "update": 200,
        "partial_update": 200,
        "delete": 204,
    },
    "other": {
        "list": 200,
        "retrieve": 200,
        "create": 201,
        "update": 200,
        "partial_update": 200,
        "delete": 403,
    },
}


def snapshot() -> list[tuple]:
    return list(Defect.objects.order_by("id").values_list("id", "comment", "timestamp", "user"))


@pytest.fixture
def clients(alice_client, bob_client):
    return {"anonymous": APIClient(), "creator": alice_client, "other": bob_client}


@pytest.mark.parametrize("who", list(EXPECTED))
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_permission_matrix(who, operation, clients, user, other_user):
    defect = defect_create(user=user, comment="Brake squeal", timestamp=None)
    method, path, body = OPERATIONS[operation]
    before = snapshot()

    response = getattr(clients[who], method)(path.format(id=defect.pk), body, format="json")

    assert response.status_code == EXPECTED[who][operation], response.content
    after = snapshot()
    if response.status_code >= 400 or method == "get":
        assert after == before  # refused or read-only: nothing changed
    elif operation == "create":
        created = Defect.objects.exclude(pk=defect.pk).get()
        assert created.user == (user if who == "creator" else other_user)
        assert response.json()["user"] == created.user_id
    elif operation == "delete":
        assert not Defect.objects.filter(pk=defect.pk).exists()
    else:
        defect.refresh_from_db()
        assert defect.comment == body["comment"]
        assert defect.user == user  # the creator never changes, whoever updates
    if response.status_code == 401:
        assert response["WWW-Authenticate"].startswith("Basic")


def test_refused_delete_says_why_and_keeps_the_defect(user, bob_client):
    defect = defect_create(user=user, comment="Door stuck")
    response = bob_client.delete(f"/api/defects/{defect.pk}")
    assert response.status_code == 403
    assert response.json() == {"detail": "Only the user who created this defect may delete it."}
    assert Defect.objects.filter(pk=defect.pk).exists()


def test_superuser_may_not_delete_anothers_defect(user, django_user_model):
    django_user_model.objects.create_superuser("root", password="root-password")
    defect = defect_create(user=user, comment="Door stuck")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth("root", "root-password"))
    assert client.delete(f"/api/defects/{defect.pk}").status_code == 403
    assert Defect.objects.filter(pk=defect.pk).exists()


def test_delete_of_a_missing_id_is_404(alice_client):
    response = alice_client.delete("/api/defects/424242")
    assert response.status_code == 404
    assert response.json() == {"detail": "No Defect matches the given query."}


@pytest.mark.parametrize(
    "authorization",
    [basic_auth("alice", "wrong"), basic_auth("nobody", "x"), "Token 0123456789abcdef", "Bearer x"],
)
def test_wrong_credentials_are_401_with_a_challenge(authorization, user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)
    response = client.get("/api/defects")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="api"'
    assert "detail" in response.json()


def test_token_authentication(token_client, user):
    response = token_client.post("/api/defects", {"comment": "By token"}, format="json")
    assert response.status_code == 201
    assert Defect.objects.get().user == user


def test_token_from_the_management_command(user, capsys):
    from django.core.management import call_command

    call_command("drf_create_token", "alice")
    key = capsys.readouterr().out.split()[2]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/defects").status_code == 200


def test_session_authentication_enforces_csrf(user):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="alice", password="alice-password")

    assert client.get("/api/defects").status_code == 200
    refused = client.post("/api/defects", {"comment": "No CSRF token"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert not Defect.objects.exists()

    client.get("/api/defects", HTTP_ACCEPT="text/html")  # the browsable API sets the cookie
    csrf = client.cookies["csrftoken"].value
    accepted = client.post(
        "/api/defects", {"comment": "With it"}, format="json", HTTP_X_CSRFTOKEN=csrf
    )
    assert accepted.status_code == 201
    assert Defect.objects.get().user == user


def test_admin_session_reaches_the_browsable_api(user):
    client = APIClient()
    client.force_login(user)
    response = client.get("/api/defects", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"Defect" in response.content


@pytest.mark.parametrize("path", ["/api/auth/login/", "/api/auth/login"])
def test_login_page_of_the_browsable_api(client, path):
    response = client.get(path)
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/api/auth/logout/", "/api/auth/logout"])
def test_log_out_of_the_browsable_api_with_or_without_the_slash(client, user, path):
    client.force_login(user)
    assert client.get("/api/defects").status_code == 200

    assert client.post(path).status_code == 200  # Django's "logged out" page

    assert client.get("/api/defects").status_code == 401
