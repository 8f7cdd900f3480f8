"""The OpenAPI schema at /api/schema and the Swagger UI at /api/docs (public, offline)."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

# Every operation: 401 (credentials), 429 (throttle, lockout), 503 (database down); those
# with a body: 400, 403 (CSRF of a session), 413 and 415 too.
ANY = {"401", "429", "503"}
WITH_A_BODY = {"400", "403", "413", "415"}
EXPECTED_STATUSES = {
    ("/api/defects", "get"): {"200", "400"} | ANY,
    ("/api/defects", "post"): {"201"} | WITH_A_BODY | ANY,
    ("/api/defects/{id}", "get"): {"200", "404"} | ANY,
    ("/api/defects/{id}", "put"): {"200", "404"} | WITH_A_BODY | ANY,
    ("/api/defects/{id}", "patch"): {"200", "404"} | WITH_A_BODY | ANY,
    ("/api/defects/{id}", "delete"): {"204", "403", "404"} | ANY,
    ("/api/tokens", "get"): {"200"} | ANY,
    ("/api/tokens", "post"): {"201"} | WITH_A_BODY | ANY,
    ("/api/tokens/{id}", "delete"): {"204", "404"} | ANY,
    # Staff only: 403 for everyone else.
    ("/api/destinations", "get"): {"200", "400", "403"} | ANY,
    ("/api/destinations", "post"): {"201"} | WITH_A_BODY | ANY,
    ("/api/destinations/{id}", "get"): {"200", "403", "404"} | ANY,
    ("/api/destinations/{id}", "put"): {"200", "404"} | WITH_A_BODY | ANY,
    ("/api/destinations/{id}", "patch"): {"200", "404"} | WITH_A_BODY | ANY,
    ("/api/destinations/{id}", "delete"): {"204", "400", "403", "404"} | ANY,
    ("/api/destinations/{id}/rotate-secret", "post"): {"200", "400", "403", "404"} | ANY,
    # A destination's delivery log (broadcast/deliveries_api.py), staff only too.
    ("/api/destinations/{id}/deliveries", "get"): {"200", "400", "403", "404"} | ANY,
    ("/api/destinations/{id}/attempts", "get"): {"200", "400", "403", "404"} | ANY,
    ("/api/destinations/{id}/deliveries/{delivery_id}/resend", "post"): {"202", "403", "404"} | ANY,
    # 200: a dry run's count; 202: replayed.
    ("/api/destinations/{id}/replay", "post"): {"200", "202", "404"} | WITH_A_BODY | ANY,
}
ALL_SCHEMES = [{"basicAuth": []}, {"tokenAuth": []}, {"bearerAuth": []}, {"cookieAuth": []}]


@pytest.fixture
def schema():
    response = APIClient().get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200  # public: no credentials needed
    return response.json()


def test_schema_generation_is_valid_and_warning_free(tmp_path):
    # Raises SchemaGenerationError on any warning, and validates against the OpenAPI spec.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", tmp_path / "s.yaml")
    assert (tmp_path / "s.yaml").read_text().startswith("openapi: 3.")


def test_operations_and_their_status_codes(schema):
    operations = {
        (path, method): set(operation["responses"])
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    assert operations == EXPECTED_STATUSES


def test_the_four_authentication_schemes(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["basicAuth"] == {"type": "http", "scheme": "basic"}
    assert schemes["tokenAuth"]["in"] == "header"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["cookieAuth"]["name"] == "sessionid"
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if (path, method) == ("/api/tokens", "post"):
                # A token cannot create tokens: the password or the session only.
                assert operation["security"] == [{"basicAuth": []}, {"cookieAuth": []}]
            else:
                assert operation["security"] == ALL_SCHEMES, (path, method)


def test_listing_documents_cursor_pagination_and_filters(schema):
    listing = schema["paths"]["/api/defects"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "cursor",
        "page_size",
        "user",
        "since",
        "until",
        "search",
    }
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    paginated = schema["components"]["schemas"][page.rsplit("/", 1)[1]]
    assert set(paginated["properties"]) == {"next", "previous", "results"}
    assert "count" not in paginated["properties"]


def test_representation_in_the_schema(schema):
    defect = schema["components"]["schemas"]["Defect"]["properties"]
    assert {"id", "url", "comment", "timestamp", "user", "username"} == set(defect)
    assert defect["user"]["readOnly"] is True
    request = schema["components"]["schemas"]["DefectRequest"]
    assert set(request["properties"]) == {"comment", "timestamp"}
    assert request["required"] == ["comment"]
    assert request["properties"]["comment"]["maxLength"] == 10_000


def test_only_json_bodies(schema):
    for item in schema["paths"].values():
        for operation in item.values():
            if "requestBody" in operation:
                assert list(operation["requestBody"]["content"]) == ["application/json"]


@pytest.mark.parametrize("path", ["/api/docs", "/api/docs/"])
def test_swagger_ui_is_public_and_served_locally(path, client):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in a for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset  # no CDN
        assert finders.find(asset.removeprefix("/static/").split("?")[0]), asset


def test_throttled_and_unavailable_answers_document_retry_after(schema):
    for item in schema["paths"].values():
        for operation in item.values():
            for status in ("429", "503"):
                assert "Retry-After" in operation["responses"][status]["headers"]


def test_the_input_rules_are_in_the_schema(schema):
    """What the API refuses is what the schema rules out: NUL characters, blank comments,
    cursors it did not make (tests/defect/test_api_fuzz.py holds the API to it)."""
    comment = schema["components"]["schemas"]["DefectRequest"]["properties"]["comment"]
    pattern = re.compile(comment["pattern"].replace("\\u0000", "\\x00"))
    assert pattern.search("Pantograph worn")
    assert not pattern.search(" \t\n")
    assert not pattern.search("Horn\x00 silent")
    parameters = {p["name"]: p for p in schema["paths"]["/api/defects"]["get"]["parameters"]}
    assert parameters["cursor"]["schema"]["format"] == "cursor"
    assert "`next`" in parameters["cursor"]["description"]
    search = re.compile(parameters["search"]["schema"]["pattern"].replace("\\u0000", "\\x00"))
    assert search.search("brake") and not search.search("br\x00ake")
