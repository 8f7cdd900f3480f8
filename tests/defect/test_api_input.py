"""Routes with and without a slash, the representation, and bad input: never a 500."""

import datetime
import json

import pytest
from rest_framework.test import APIClient

from defect.models import Defect
from defect.services import defect_create

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


@pytest.fixture
def defect(user):
    return defect_create(
        user=user,
        comment="Wiper slow",
        timestamp=datetime.datetime(2026, 11, 28, 9, 15, tzinfo=datetime.UTC),
    )


# --- routes -------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/api/defects", None, 200),
        ("post", "/api/defects", {"comment": "Light out"}, 201),
        ("get", "/api/defects/{id}", None, 200),
        ("put", "/api/defects/{id}", {"comment": "Replaced"}, 200),
        ("patch", "/api/defects/{id}", {"comment": "Patched"}, 200),
        ("delete", "/api/defects/{id}", None, 204),
    ],
)
def test_every_method_answers_with_and_without_slash(
    slash, method, path, body, status, defect, alice_client
):
    url = path.format(id=defect.pk) + slash
    response = getattr(alice_client, method)(url, body, format="json")
    assert response.status_code == status, response.content  # never a redirect
    if status == 201:
        assert response["Location"] == response.json()["url"]


def test_representation(defect, alice_client, user):
    body = alice_client.get(f"/api/defects/{defect.pk}").json()
    assert body == {
        "id": defect.pk,
        "url": f"http://testserver/api/defects/{defect.pk}",
        "comment": "Wiper slow",
        "timestamp": "2026-11-28T09:15:00Z",
        "user": user.pk,
        "username": "alice",
    }
    assert alice_client.get("/api/defects").json()["results"] == [body]


def test_fast_representation_matches_the_declared_fields(defect, rf):
    """The hand-written to_representation gives what DRF's field-by-field one gives."""
    from rest_framework import serializers
    from rest_framework.request import Request

    from defect.api.serializers import DefectSerializer

    defect.timestamp = defect.timestamp.replace(microsecond=123456)
    serializer = DefectSerializer(context={"request": Request(rf.get("/api/defects"))})
    generic = serializers.Serializer.to_representation(serializer, defect)
    assert serializer.to_representation(defect) == generic
    row = DefectSerializer.values(Defect.objects.filter(pk=defect.pk)).get()
    row["timestamp"] = defect.timestamp
    assert serializer.to_representation(row) == generic


def test_user_in_the_body_is_ignored_on_create(alice_client, user, other_user):
    response = alice_client.post(
        "/api/defects", {"comment": "Seat torn", "user": other_user.pk}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["user"] == user.pk
    assert Defect.objects.get().user == user


@pytest.mark.parametrize("method", ["put", "patch"])
def test_user_in_the_body_is_ignored_on_update(method, defect, bob_client, user, other_user):
    response = getattr(bob_client, method)(
        f"/api/defects/{defect.pk}", {"comment": "Seat torn", "user": other_user.pk}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["user"] == user.pk
    defect.refresh_from_db()
    assert (defect.user, defect.comment) == (user, "Seat torn")


def test_timestamp_defaults_to_now_and_is_kept_on_put_without_one(alice_client):
    before = datetime.datetime.now(datetime.UTC)
    created = alice_client.post("/api/defects", {"comment": "Now"}, format="json").json()
    stamp = datetime.datetime.fromisoformat(created["timestamp"])
    assert before <= stamp <= datetime.datetime.now(datetime.UTC)
    assert created["timestamp"].endswith("Z")
    replaced = alice_client.put(created["url"], {"comment": "Later"}, format="json").json()
    assert replaced["timestamp"] == created["timestamp"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-11-28T10:15:00+01:00", "2026-11-28T09:15:00Z"),
        ("2026-11-28T09:15:00", "2026-11-28T09:15:00Z"),  # no offset: UTC
        ("2026-11-28T09:15:00.250Z", "2026-11-28T09:15:00.250000Z"),
    ],
)
def test_timestamps_are_iso_8601_and_answered_in_utc(sent, stored, alice_client):
    response = alice_client.post("/api/defects", {"comment": "x", "timestamp": sent}, format="json")
    assert response.status_code == 201
    assert response.json()["timestamp"] == stored


def test_bodies_are_json_only(alice_client):
    multipart = alice_client.post("/api/defects", {"comment": "From a form"}, format="multipart")
    urlencoded = alice_client.post(
        "/api/defects", "comment=x", content_type="application/x-www-form-urlencoded"
    )
    assert (multipart.status_code, urlencoded.status_code) == (415, 415)
    assert not Defect.objects.exists()


def test_comment_of_exactly_10000_characters(alice_client):
    response = alice_client.post("/api/defects", {"comment": "x" * 10_000}, format="json")
    assert response.status_code == 201


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "comment"),
        ({"comment": ""}, "comment"),
        ({"comment": "  \n\t "}, "comment"),
        ({"comment": None}, "comment"),
        ({"comment": 42}, "comment"),
        ({"comment": ["x"]}, "comment"),
        ({"comment": {"a": 1}}, "comment"),
        ({"comment": "x" * 10_001}, "comment"),
        ({"comment": "nul \x00 byte"}, "comment"),
        ({"comment": "ok", "timestamp": "yesterday"}, "timestamp"),
        ({"comment": "ok", "timestamp": 1764320100}, "timestamp"),
        ({"comment": "ok", "timestamp": None}, "timestamp"),
        ({"comment": "ok", "timestamp": "2026-02-30T00:00:00Z"}, "timestamp"),
        ({"comment": "ok", "timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp"),
        ({"comment": "ok", "timestamp": "9999-12-31T23:59:59-01:00"}, "timestamp"),
        ([], "non_field_errors"),
        ("just a string", "non_field_errors"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(body, field, alice_client, defect):
    for method, url in [("post", "/api/defects"), ("put", f"/api/defects/{defect.pk}")]:
        response = getattr(alice_client, method)(url, body, format="json")
        assert response.status_code == 400, (method, response.content)
        assert field in response.json()
    assert Defect.objects.count() == 1
    defect.refresh_from_db()
    assert defect.comment == "Wiper slow"


@pytest.mark.parametrize("body", ["{", '{"comment": "x",}', "nul\x00", "\xff\xfe", "[1, 2"])
def test_malformed_json_is_a_json_400(body, alice_client):
    response = alice_client.post("/api/defects", body, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "JSON parse error" in response.json()["detail"]


def test_body_over_1_mib_is_a_json_413(alice_client):
    body = json.dumps({"comment": "x" * MIB})
    response = alice_client.post("/api/defects", body, content_type="application/json")
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert not Defect.objects.exists()


def test_form_body_over_1_mib_is_a_json_413(alice_client, defect):
    response = alice_client.patch(
        f"/api/defects/{defect.pk}",
        "comment=" + "x" * MIB,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"


def test_body_of_just_under_1_mib_is_read(alice_client):
    body = json.dumps({"comment": "x" * 10_001}).ljust(MIB)
    response = alice_client.post("/api/defects", body, content_type="application/json")
    assert response.status_code == 400  # read and validated, not refused for its size
    assert "comment" in response.json()


def test_unsupported_content_type_is_415(alice_client):
    response = alice_client.post("/api/defects", "comment,x", content_type="text/csv")
    assert response.status_code == 415
    assert "text/csv" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/api/defects"), ("delete", "/api/defects/"), ("post", "/api/defects/{id}")],
)
def test_method_not_allowed_is_a_json_405(method, path, alice_client, defect):
    response = getattr(alice_client, method)(path.format(id=defect.pk), {}, format="json")
    assert response.status_code == 405
    assert "not allowed" in response.json()["detail"]
    assert "Allow" in response


@pytest.mark.parametrize(
    "path",
    [
        "/api/defects/424242",
        "/api/defects/abc",
        "/api/defects/1.5",
        "/api/defects/-1",
        "/api/defects/99999999999999999999999",
        "/api/defects/1/more",
        "/api/nothing-here",
        "/api/",
    ],
)
@pytest.mark.parametrize("debug", [False, True])
def test_unknown_ids_and_paths_are_a_json_404(path, debug, alice_client, settings, defect):
    settings.DEBUG = debug
    for method in ("get", "put", "patch", "delete"):
        response = getattr(alice_client, method)(path, {"comment": "x"}, format="json")
        assert response.status_code == 404, (method, response.content)
        assert response["Content-Type"] == "application/json"
        assert "detail" in response.json()


def test_in_debug_mode_errors_are_json_too(alice_client, settings):
    settings.DEBUG = True
    for response, status in [
        (alice_client.post("/api/defects", "{", content_type="application/json"), 400),
        (alice_client.post("/api/defects", "x" * (MIB + 1), content_type="application/json"), 413),
        (alice_client.get("/api/defects?since=never"), 400),
        (APIClient().get("/api/defects"), 401),
    ]:
        assert response.status_code == status
        assert response["Content-Type"] == "application/json"
        assert b"Traceback" not in response.content
