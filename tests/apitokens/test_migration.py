"""Migrations 0002 to 0004: DRF authtoken's clear-text keys are hashed in place and keep
working for 90 days, and no copy of them is left in the database (the admin's log).

Run with Django's MigrationExecutor on apitokens alone: going back to 0001 and
forward again touches no other app (a tool that rebuilds the whole database
would meet the broadcast's trigger function, which no model describes).
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apitokens.models import ApiToken
from apitokens.services import token_create
from tests.apitokens.conftest import START, every_value_in_the_database, get_with

# Schema changes on SQLite cannot run inside a test's transaction.
pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("apitokens", "0001_initial")
TESTED = ("apitokens", "0002_hash_authtoken_keys")
LATEST = ("apitokens", "0004_expire_migrated_authtoken_keys")
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
    migrate(LATEST)


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


def log_entry(user, content_type: ContentType | None, object_id: str, object_repr: str) -> LogEntry:
    return LogEntry.objects.create(
        user=user, content_type=content_type, object_id=object_id, object_repr=object_repr,
        action_flag=ADDITION, change_message="[]",
    )  # fmt: skip


def test_the_admin_log_keeps_no_clear_key(before_0002, user, superuser):
    """DRF's token admin logged each token with its key as the entry's text; before DRF
    3.12 (model "token") as its object id too. An entry whose content type was deleted
    since (remove_stale_contenttypes) keeps its text."""
    create_authtoken_table(user.pk)
    other_key = "0123456789abcdef0123456789abcdef01234567"
    proxy = log_entry(user, ContentType.objects.create(app_label="authtoken", model="tokenproxy"),
                      str(user.pk), LEGACY_KEY)  # fmt: skip
    old = log_entry(user, ContentType.objects.create(app_label="authtoken", model="token"),
                    other_key, other_key)  # fmt: skip
    stale = log_entry(user, None, str(superuser.pk), LEGACY_KEY[::-1])
    kept = log_entry(user, ContentType.objects.get_for_model(user), str(user.pk), "alice")

    migrate(LATEST)

    keys = (LEGACY_KEY, other_key, LEGACY_KEY[::-1])
    assert not [(t, v) for t, v in every_value_in_the_database() if any(k in v for k in keys)]
    removed = "API token (key removed by apitokens.0003)"
    for entry, object_id in ((proxy, str(user.pk)), (old, None), (stale, str(superuser.pk))):
        entry.refresh_from_db()
        assert (entry.object_id, entry.object_repr, entry.user) == (object_id, removed, user)
    kept.refresh_from_db()
    assert (kept.object_id, kept.object_repr) == (str(user.pk), "alice")


def test_migrated_keys_expire_90_days_after_the_upgrade(before_0002, user, clock, monkeypatch):
    create_authtoken_table(user.pk)
    ours, ours_text = token_create(user=user, name="kept for ever", expires_days=None)
    monkeypatch.setattr("django.utils.timezone.now", lambda: START)  # the upgrade's time

    migrate(LATEST)

    migrated = ApiToken.objects.get(name="created by drf_create_token")
    assert migrated.expires == START + timedelta(days=90)
    ours.refresh_from_db()
    assert ours.expires is None  # an administrator's choice, not the migration's
    clock.advance(days=89)
    assert get_with(LEGACY_KEY).status_code == 200
    clock.advance(days=1)
    assert get_with(LEGACY_KEY).status_code == 401
    assert get_with(ours_text).status_code == 200


def test_reversing_0004_takes_the_migrated_keys_expiry_away(before_0002, user):
    create_authtoken_table(user.pk)
    migrate(LATEST)

    migrate(("apitokens", "0003_redact_authtoken_keys_in_admin_log"))

    assert ApiToken.objects.get().expires is None
