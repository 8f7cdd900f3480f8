"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis).

Every operation of /api/schema is called with generated input (valid and
invalid) as alice with her token; each response must be no 5xx and conform to
the schema: a documented status code, content type, headers and body.
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.defect.conftest import reset_rate_limits

pytestmark = pytest.mark.fuzz

schema = schemathesis.openapi.from_wsgi("/api/schema", get_wsgi_application())
# A NUL character is refused in any text (PostgreSQL cannot store it), as the schema's
# description of `comment` says but no JSON Schema keyword can.
schema.config.generation.update(allow_x00=False)


@pytest.fixture
def defects(user, other_user):
    """Something to find, change and (for alice) delete: ids 1.. exist as the fuzzer guesses."""
    from defect.services import defect_create

    return [
        defect_create(user=u, comment=f"Seed {i}") for i, u in enumerate([user, other_user] * 3)
    ]


@pytest.fixture
def keep_db_connection():
    """Calls go through Django's WSGI handler, which closes the database connection after
    each request (and with it the test database); Django's test client avoids the same."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def valid_yet_refused(case) -> bool:
    """Input that fits the schema but that the API rightly refuses, as no schema can say:
    a cursor it did not make (any string fits), and a timestamp on the first or last
    representable day, which its offset may push out of range."""
    body = case.body if isinstance(case.body, dict) else {}
    timestamp = body.get("timestamp")
    near_edge = isinstance(timestamp, str) and timestamp.startswith(("0001-01-01", "9999-12-31"))
    return "cursor" in (case.query or {}) or near_edge


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case, keep_db_connection, token, defects):
    reset_rate_limits()  # hundreds of calls in seconds, some with wrong credentials
    excluded = [positive_data_acceptance] if valid_yet_refused(case) else []
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, excluded_checks=excluded)
