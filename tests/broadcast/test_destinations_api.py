"""/api/destinations: staff only; the secret shown once; bad input a 400 naming the field."""

import logging

import pytest

from broadcast.destinations import (
    destination_disable,
    destination_signing_secrets,
    sync_alerts_destination,
)
from broadcast.models import Delivery, Destination
from broadcast.services import event_enqueue

pytestmark = pytest.mark.django_db

SHOWN = {
    "id", "name", "url", "actions", "format", "enabled", "max_rate", "paused", "paused_reason",
    "disabled_reason", "created_at", "managed",
}  # fmt: skip
PLANNING = {"name": "planning", "url": "https://planning.example/hooks"}


@pytest.fixture
def planning(staff) -> dict:
    response = staff.post("/api/destinations", PLANNING, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def builtin() -> Destination:
    return Destination.objects.get(managed=True)


def every_route(pk: int) -> list[tuple[str, str]]:
    return [
        ("get", "/api/destinations"),
        ("post", "/api/destinations"),
        ("get", f"/api/destinations/{pk}"),
        ("put", f"/api/destinations/{pk}"),
        ("patch", f"/api/destinations/{pk}"),
        ("delete", f"/api/destinations/{pk}"),
        ("post", f"/api/destinations/{pk}/rotate-secret"),
    ]


def test_without_credentials_every_route_is_a_401(api_client, db):
    for method, path in every_route(builtin().pk):
        response = getattr(api_client, method)(path, PLANNING, format="json")
        assert response.status_code == 401, (method, path)
        assert response["WWW-Authenticate"] == 'Basic realm="api"'


def test_a_user_who_is_not_staff_gets_a_403_on_every_route(alice):
    for method, path in every_route(builtin().pk):
        response = getattr(alice, method)(path, PLANNING, format="json")
        assert response.status_code == 403, (method, path)
        assert set(response.json()) == {"detail"}
    assert Destination.objects.count() == 1
    assert builtin().name == "counter-server"


@pytest.mark.parametrize("path", ["/api/destinations", "/api/destinations/"])
def test_create_answers_201_with_the_secret_this_once(staff, path, caplog):
    caplog.set_level(logging.DEBUG)
    response = staff.post(path, PLANNING, format="json")

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == SHOWN | {"secret"}
    assert body | {"id": 0, "created_at": ""} == {
        **PLANNING, "actions": ["create", "delete"], "format": "counter", "enabled": True,
        "max_rate": 0.0, "paused": False, "paused_reason": "", "disabled_reason": "",
        "managed": False, "secret": body["secret"], "id": 0, "created_at": "",
    }  # fmt: skip
    destination = Destination.objects.get(pk=body["id"])
    assert destination_signing_secrets(destination=destination) == [body["secret"]]
    # Never again: not in the list, nor on its page, nor in a log line.
    listed = staff.get("/api/destinations").json()["results"]
    assert body["secret"] not in str(listed) and body["secret"] not in str(
        staff.get(f"/api/destinations/{body['id']}").json()
    )
    assert body["secret"] not in caplog.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://x.example/"}, "name"),
        ({**PLANNING, "name": "   "}, "name"),
        ({**PLANNING, "name": "x" * 101}, "name"),
        ({**PLANNING, "name": 7}, "name"),
        ({**PLANNING, "name": "counter-server"}, "name"),
        ({"name": "planning"}, "url"),
        ({**PLANNING, "url": "ftp://files.example/"}, "url"),
        ({**PLANNING, "url": "planning.example/hooks"}, "url"),
        ({**PLANNING, "url": "https://host:99999/"}, "url"),
        ({**PLANNING, "url": ["https://x.example/"]}, "url"),
        ({**PLANNING, "actions": []}, "actions"),
        ({**PLANNING, "actions": ["update"]}, "actions"),
        ({**PLANNING, "actions": "create"}, "actions"),
        ({**PLANNING, "actions": ["create", "create"]}, "actions"),
        ({**PLANNING, "format": "xml"}, "format"),
        ({**PLANNING, "max_rate": -1}, "max_rate"),
        ({**PLANNING, "max_rate": "fast"}, "max_rate"),
        ({**PLANNING, "max_rate": "inf"}, "max_rate"),
        ({**PLANNING, "enabled": "maybe"}, "enabled"),
        ({**PLANNING, "paused_reason": "x" * 1001}, "paused_reason"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(staff, body, field):
    response = staff.post("/api/destinations", body, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {field}
    assert Destination.objects.count() == 1  # the built-in one


def test_a_name_taken_is_a_400_naming_it(staff, planning):
    response = staff.post("/api/destinations", {**PLANNING, "url": "https://x/"}, format="json")
    assert (response.status_code, set(response.json())) == (400, {"name"})


def test_one_destination_over_the_limit_is_a_400_saying_so(staff, settings):
    settings.BROADCAST = {**settings.BROADCAST, "MAX_DESTINATIONS": 2}
    assert staff.post("/api/destinations", PLANNING, format="json").status_code == 201

    response = staff.post("/api/destinations", {**PLANNING, "name": "third"}, format="json")

    assert response.status_code == 400
    (message,) = response.json()["non_field_errors"]
    assert "BROADCAST_MAX_DESTINATIONS" in message and "2" in message


def test_malformed_json_and_forms_are_refused_as_by_the_defects_api(staff):
    malformed = staff.post("/api/destinations", "{", content_type="application/json")
    form = staff.post("/api/destinations", PLANNING)  # multipart
    assert (malformed.status_code, set(malformed.json())) == (400, {"detail"})
    assert (form.status_code, set(form.json())) == (415, {"detail"})


def test_the_list_is_paginated_as_the_defects(staff, planning):
    first = staff.get("/api/destinations?page_size=1").json()
    assert set(first) == {"next", "previous", "results"}
    assert [d["name"] for d in first["results"]] == ["counter-server"]
    second = staff.get(first["next"]).json()
    assert [d["name"] for d in second["results"]] == ["planning"]
    assert second["next"] is None
    assert set(second["results"][0]) == SHOWN


@pytest.mark.parametrize(("query", "field"), [("cursor=nonsense", "cursor"),
                                              ("page_size=0", "page_size"),
                                              ("page_size=%C2%B3", "page_size")])  # fmt: skip
def test_a_cursor_it_did_not_make_or_a_bad_page_size_is_a_400(staff, query, field):
    response = staff.get(f"/api/destinations?{query}")
    assert (response.status_code, set(response.json())) == (400, {field})


@pytest.mark.parametrize("slash", ["", "/"])
def test_patch_changes_what_it_names(staff, planning, slash):
    path = f"/api/destinations/{planning['id']}{slash}"
    body = {"actions": ["delete"], "format": "event", "max_rate": 2.5, "paused": True,
            "paused_reason": "planning upgrade"}  # fmt: skip

    response = staff.patch(path, body, format="json")

    assert response.status_code == 200
    assert response.json() == {k: v for k, v in {**planning, **body}.items() if k != "secret"}
    assert staff.get(path).json() == response.json()


def test_enabling_a_disabled_destination_clears_its_reason(staff, planning):
    destination_disable(destination=Destination.objects.get(pk=planning["id"]), reason="410 Gone")
    path = f"/api/destinations/{planning['id']}"
    assert staff.get(path).json()["disabled_reason"] == "410 Gone"

    body = staff.patch(path, {"enabled": True}, format="json").json()

    assert (body["enabled"], body["disabled_reason"]) == (True, "")


def test_put_replaces_and_needs_name_and_url(staff, planning):
    path = f"/api/destinations/{planning['id']}"
    missing = staff.put(path, {"name": "planning"}, format="json")
    assert (missing.status_code, set(missing.json())) == (400, {"url"})

    body = {"name": "planning-v2", "url": "https://v2.example/", "actions": ["create"]}
    replaced = staff.put(path, body, format="json").json()
    assert {k: replaced[k] for k in body} == body


def test_the_read_only_fields_are_ignored(staff, planning):
    path = f"/api/destinations/{planning['id']}"
    body = staff.patch(path, {"managed": True, "disabled_reason": "x", "id": 99},
                       format="json").json()  # fmt: skip
    assert (body["managed"], body["disabled_reason"], body["id"]) == (False, "", planning["id"])


@pytest.mark.parametrize(("field", "value"), [("name", "counter"), ("url", "http://other/")])
def test_the_built_in_destinations_name_and_url_are_the_settings(staff, field, value):
    path = f"/api/destinations/{builtin().pk}"
    response = staff.patch(path, {field: value}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {field}
    assert "COUNTER_SERVER_URL" in response.json()[field][0]


def test_the_built_in_destination_is_shown_as_managed_and_may_be_paused(staff, settings):
    path = f"/api/destinations/{builtin().pk}"
    shown = staff.get(path).json()
    assert (shown["managed"], shown["url"]) == (True, settings.COUNTER_SERVER_URL)

    paused = staff.patch(path, {"paused": True, "paused_reason": "maintenance"}, format="json")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    for refused in (staff.delete(path), staff.post(f"{path}/rotate-secret")):
        assert (refused.status_code, set(refused.json())) == (400, {"managed"})


def test_the_alerts_destination_refuses_deletion_naming_its_own_setting(staff, settings):
    settings.BROADCAST = {**settings.BROADCAST, "ALERT_URL": "http://127.0.0.1:9/alerts"}
    alerts = sync_alerts_destination()

    refused = staff.delete(f"/api/destinations/{alerts.pk}")

    assert refused.status_code == 400
    assert "BROADCAST_ALERT_URL" in refused.json()["managed"][0]
    assert Destination.objects.filter(pk=alerts.pk).exists()


def test_delete_drops_the_destination_and_its_pending_deliveries(staff, planning):
    event_enqueue(payload={"user": 1, "action": "create"}, action="create")
    assert Delivery.objects.filter(destination_id=planning["id"]).count() == 1

    response = staff.delete(f"/api/destinations/{planning['id']}/")

    assert response.status_code == 204
    assert not Delivery.objects.filter(destination_id=planning["id"]).exists()
    assert staff.get(f"/api/destinations/{planning['id']}").status_code == 404


@pytest.mark.parametrize("slash", ["", "/"])
def test_rotate_answers_the_new_secret_and_both_sign_meanwhile(staff, planning, slash, caplog):
    caplog.set_level(logging.DEBUG)
    response = staff.post(f"/api/destinations/{planning['id']}/rotate-secret{slash}")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    (secret,) = response.json().values()
    assert secret.startswith("whsec_") and secret != planning["secret"]
    destination = Destination.objects.get(pk=planning["id"])
    assert destination_signing_secrets(destination=destination) == [secret, planning["secret"]]
    assert secret not in caplog.text


@pytest.mark.parametrize("pk", ["4711", "abc"])
def test_an_unknown_destination_is_a_json_404(staff, pk):
    for method, path in every_route(pk)[2:]:
        response = getattr(staff, method)(path, PLANNING, format="json")
        assert (response.status_code, set(response.json())) == (404, {"detail"}), (method, path)
