"""Migration 0002: DRF authtoken's clear-text keys are hashed in place and keep working.

Run with Django's MigrationExecutor on apitokens alone: going back to 0001 and
forward again touches no other app (a tool that rebuilds the whole database
would meet the broadcast's trigger function, which no model describes).
"""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apitokens.models import ApiToken
from tests.apitokens.conftest import get_with

# Schema changes on SQLite cannot run inside a test's transaction.
pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("apitokens", "0001_initial")
TESTED = ("apitokens", "0002_hash_authtoken_keys")
LEGACY_KEY = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"  # DRF's documentation's example
CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def migrate(target: tuple[str, str]) -> None:
    MigrationExecutor(connection).migrate([target])


@pytest.fixture
def before_0002():
    migrate(BEFORE)
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS authtoken_token")
    migrate(TESTED)


def create_authtoken_table(user_id: int) -> None:
    """authtoken_token as DRF's authtoken migrations left it, with one clear key."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE authtoken_token ({connection.ops.quote_name('key')} varchar(40) "
            "NOT NULL PRIMARY KEY, created timestamp with time zone NOT NULL, "
            "user_id integer NOT NULL UNIQUE REFERENCES auth_user (id))"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)", [LEGACY_KEY, CREATED, user_id]
        )


def test_a_clear_text_key_is_hashed_in_place_and_keeps_working(before_0002, user):
    create_authtoken_table(user.pk)

    migrate(TESTED)

    token = ApiToken.objects.get()
    assert (token.user, token.name, token.created, token.expires) == (
        user,
        "created by drf_create_token",
        CREATED,
        None,
    )
    assert LEGACY_KEY not in (token.digest, token.prefix)
    assert "authtoken_token" not in connection.introspection.table_names()
    response = get_with(LEGACY_KEY)
    assert response.status_code == 200, response.content


def test_a_database_without_authtoken_has_nothing_to_migrate(before_0002, user):
    migrate(TESTED)

    assert not ApiToken.objects.exists()
