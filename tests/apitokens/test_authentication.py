"""Authenticating with a token: both header forms, one query, and one 401 for every refusal."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apitokens import text
from apitokens.authentication import TokenAuthentication
from apitokens.models import ApiToken
from apitokens.services import token_create
from tests.apitokens.conftest import every_value_in_the_database, get_with
from tests.helpers import basic_auth

pytestmark = pytest.mark.django_db

INVALID = {"detail": "Invalid token."}


def assert_refused(token_text: str) -> None:
    for keyword in ("Token", "Bearer"):
        response = get_with(token_text, keyword)
        assert response.status_code == 401, keyword
        assert response.json() == INVALID


@pytest.mark.parametrize("keyword", ["Token", "Bearer", "token", "bearer"])
def test_token_and_bearer_headers_both_authenticate(token, keyword):
    assert get_with(token, keyword).status_code == 200


def test_the_user_and_the_token_are_those_of_the_text(user, token):
    found_user, found_token = TokenAuthentication().authenticate_credentials(token)

    assert found_user == user
    assert found_token == ApiToken.objects.get(user=user)


def test_the_lookup_is_one_query(token, django_assert_num_queries):
    get_with(token)  # its first use is recorded
    with django_assert_num_queries(1) as queries:
        TokenAuthentication().authenticate_credentials(token)

    assert ApiToken._meta.db_table in queries.captured_queries[0]["sql"]


def test_an_unknown_well_formed_token_is_refused(token):
    assert_refused(text.generate())


def test_a_revoked_token_is_refused_on_the_next_request(token):
    assert get_with(token).status_code == 200
    ApiToken.objects.get().delete()

    assert_refused(token)


def test_an_inactive_users_token_is_refused_with_the_same_answer(user, token):
    assert get_with(token).status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert_refused(token)


def test_deleting_a_user_deletes_their_tokens(user, token, other_user):
    token_create(user=other_user, name="bob's")
    user.delete()

    assert list(ApiToken.objects.values_list("user", flat=True)) == [other_user.pk]
    assert_refused(token)


def test_a_token_expires_at_its_expiry_on_the_clock(user, clock):
    _, text = token_create(user=user, name="short", expires_days=1)
    clock.advance(days=1, seconds=-1)
    assert get_with(text).status_code == 200

    clock.advance(seconds=1)
    assert_refused(text)


def test_a_token_expires_after_90_days_by_default(user, clock):
    _, text = token_create(user=user, name="default")
    clock.advance(days=90, seconds=-1)
    assert get_with(text).status_code == 200

    clock.advance(seconds=1)
    assert_refused(text)


def test_a_token_made_never_to_expire_works_years_later(user, clock):
    _, text = token_create(user=user, name="forever", expires_days=None)
    clock.advance(days=3650)

    assert get_with(text).status_code == 200


def updates_of_tokens(queries: CaptureQueriesContext) -> int:
    table = ApiToken._meta.db_table
    return sum(
        1
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith("UPDATE") and table in query["sql"]
    )


def burst(token_text: str, requests: int = 100) -> int:
    """`requests` requests with the token: how many UPDATEs of the tokens' table they made."""
    with CaptureQueriesContext(connection) as queries:
        for _ in range(requests):
            assert get_with(token_text).status_code == 200
    return updates_of_tokens(queries)


def test_last_used_is_written_at_most_once_a_minute(user, clock):
    token, text = token_create(user=user, name="busy")
    assert token.last_used is None

    assert burst(text) == 1
    token.refresh_from_db()
    assert token.last_used == clock.time

    first = clock.time
    clock.advance(seconds=59)
    assert burst(text) == 0
    token.refresh_from_db()
    assert token.last_used == first

    clock.advance(seconds=1)
    assert burst(text) == 1
    token.refresh_from_db()
    assert token.last_used == clock.time


def test_the_database_holds_no_token_text(user, api_client):
    api_client.credentials(HTTP_AUTHORIZATION=basic_auth("alice", "alice-password"))
    created = api_client.post("/api/tokens", {"name": "CI"}, format="json").json()
    token_text = created["token"]
    assert get_with(token_text).status_code == 200  # used: its last-used time is written
    secret = token_text[len(text.PREFIX) + 4 :]  # the part no list shows
    digest = ApiToken.objects.get(pk=created["id"]).digest

    tables_with_secret, tables_with_digest = set(), set()
    for table, value in every_value_in_the_database():
        if secret in value:
            tables_with_secret.add(table)
        if digest in value:
            tables_with_digest.add(table)

    assert tables_with_secret == set()
    assert tables_with_digest == {ApiToken._meta.db_table}  # the search reads the tables
