"""Migration 0002: DRF authtoken's clear-text keys are hashed in place and keep working."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from apitokens.models import ApiToken
from tests.apitokens.conftest import get_with

LEGACY_KEY = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"  # DRF's own documentation example
CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def create_authtoken_table(schema_editor) -> None:
    """authtoken_token as DRF's authtoken migrations left it."""
    quote = connection.ops.quote_name
    schema_editor.execute(
        f"CREATE TABLE authtoken_token ({quote('key')} varchar(40) NOT NULL PRIMARY KEY, "
        "created timestamp with time zone NOT NULL, "
        "user_id integer NOT NULL UNIQUE REFERENCES auth_user (id))"
    )


@pytest.fixture
def legacy_database(migrator):
    """The database before 0002, with an authtoken table holding alice's clear key."""
    old_state = migrator.apply_initial_migration(("apitokens", "0001_initial"))
    User = old_state.apps.get_model("auth", "User")
    alice = User.objects.create(username="alice", is_active=True)
    with connection.schema_editor() as schema_editor:
        create_authtoken_table(schema_editor)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)", [LEGACY_KEY, CREATED, alice.pk]
        )
    return alice


def test_a_clear_text_key_is_hashed_in_place_and_keeps_working(migrator, legacy_database):
    migrator.apply_tested_migration(("apitokens", "0002_hash_authtoken_keys"))

    token = ApiToken.objects.get()
    assert token.user_id == legacy_database.pk
    assert (token.name, token.created, token.expires) == (
        "created by drf_create_token",
        CREATED,
        None,
    )
    assert LEGACY_KEY not in (token.digest, token.prefix)
    assert "authtoken_token" not in connection.introspection.table_names()
    response = get_with(LEGACY_KEY, path="/api/tokens")
    assert response.status_code == 200, response.content


def test_a_database_without_authtoken_has_nothing_to_migrate(migrator):
    migrator.apply_initial_migration(("apitokens", "0001_initial"))

    migrator.apply_tested_migration(("apitokens", "0002_hash_authtoken_keys"))

    assert not ApiToken.objects.exists()
