"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis).

Every operation of /api/schema is called with generated input (valid and
invalid) as alice with her token, debug off, with every check schemathesis has
(`--checks all`): no 5xx, every status documented, every response conforming
to its schema, schema-valid input accepted and invalid input refused. Then
the same as workflows: sequences of calls that follow the schema's links
(create, then retrieve, change or delete what was created), as schemathesis'
stateful phase does.

The schema tells the whole truth about input, so nothing is excluded but one
case no schema can rule out: a timestamp on the first or last representable
day, which its offset may push out of range. A cursor is a `format: cursor`
string that only the API makes: the fuzzer makes real ones, for positions it
draws, as a client takes them from `next` and `previous`.
"""

import datetime

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import positive_data_acceptance

from defect.api.pagination import KeysetPagination, Position
from defect.models import Defect
from tests.defect.conftest import reset_rate_limits

pytestmark = pytest.mark.fuzz

CURSORS = st.builds(
    KeysetPagination.encode_cursor,
    st.builds(
        Position,
        st.datetimes(timezones=st.just(datetime.UTC)),
        st.integers(min_value=0, max_value=2**63 - 1),
        st.booleans(),
    ),
)
schemathesis.openapi.format("cursor", CURSORS)

schema = schemathesis.openapi.from_wsgi("/api/schema", get_wsgi_application())

SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


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


@pytest.fixture
def api(settings, keep_db_connection, token, defects) -> dict:
    """The production shape's answers (debug off) to alice's token: the call's headers."""
    settings.DEBUG = False
    return {"Authorization": f"Token {token}"}


def near_the_edge_of_time(case) -> bool:
    """A timestamp that fits the schema but that its offset may push out of range."""
    body = case.body if isinstance(case.body, dict) else {}
    timestamp = body.get("timestamp")
    return isinstance(timestamp, str) and timestamp.startswith(("0001-01-01", "9999-12-31"))


@pytest.mark.django_db
@schema.parametrize()
@settings(SETTINGS, max_examples=50)
def test_api_conforms_to_its_schema(case, api):
    reset_rate_limits()  # hundreds of calls in seconds, some with wrong credentials
    # Alice is not staff: every call to /api/destinations is a 403, valid input or not.
    staff_only = case.path.startswith("/api/destinations")
    excluded = [positive_data_acceptance] if near_the_edge_of_time(case) or staff_only else []
    case.call_and_validate(headers=api, excluded_checks=excluded)


@pytest.fixture
def staff_api(settings, keep_db_connection, staff_user) -> dict:
    """A staff user's token, debug off: the call's headers."""
    from apitokens.services import token_create

    settings.DEBUG = False
    return {"Authorization": f"Token {token_create(user=staff_user, name='fuzz')[1]}"}


@pytest.mark.django_db
@schema.include(path_regex=r"^/api/destinations").parametrize()
@settings(SETTINGS, max_examples=50)
def test_the_destinations_api_conforms_to_its_schema_for_staff(case, staff_api):
    reset_rate_limits()
    # Valid input may still be refused for the state it meets, which no schema says: a
    # name another destination has, BROADCAST_MAX_DESTINATIONS reached, the built-in one.
    case.call_and_validate(headers=staff_api, excluded_checks=[positive_data_acceptance])


@pytest.mark.django_db
def test_api_workflows_conform_to_its_schema(api):
    # The defects' workflows: one through the token routes (list the tokens, revoke
    # one) can revoke the very token the workflow runs with, after which every call
    # answers 401 and the run depends on what an earlier one did. The token routes'
    # sequences are tests/apitokens' own.
    defects = schema.include(path_regex=r"^/api/defects")

    class Workflow(defects.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case):
            reset_rate_limits()
            return {"headers": api}

        def teardown(self):
            # Each workflow starts from an empty table: what a list answers, and so the
            # links a workflow draws from it, must not depend on the workflows before
            # (hypothesis replays a workflow and expects the same draws).
            Defect.objects.all().delete()

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # The checks are told which headers carry the credentials, as call_and_validate
            # tells them: the check of ignored authentication sends the call without them.
            case.validate_response(
                response,
                excluded_checks=[positive_data_acceptance] if near_the_edge_of_time(case) else [],
                headers=kwargs.get("headers"),
                transport_kwargs=kwargs,
            )

    run_state_machine_as_test(
        Workflow, settings=settings(SETTINGS, max_examples=30, stateful_step_count=6)
    )
